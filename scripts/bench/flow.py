"""Local stacks, onboarding throughput and the cost model (for bench.py).

Each stack is ``scripts.local.stack`` as ``make run`` starts it, in a
subprocess on free ports with its own state directory, stopped with SIGINT.
Throughput reuses ``scripts.bench.load.LoadRun`` (latencies from the engine's
own timestamps); the cost model counts what a real local execution did.
"""
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from scripts.local.child import ChildStack
from scripts.shared import eventually

# List prices, us-east-1, x86 Lambda; free tiers left out.
PRICES = {
    "sfnPerTransition": 0.025 / 1000,        # Standard workflows: $0.025 per 1,000
    "lambdaPerRequest": 0.20 / 1_000_000,    # $0.20 per 1M requests
    "lambdaPerGbSecond": 0.0000166667,       # $0.0000166667 per GB-second
}
ASSUMED_DURATION_S = 0.100  # per invocation, billed; an assumption, see the notes


def bench_stack(workdir: Path, stripe: bool = False, name: str = "stack") -> ChildStack:
    """A stack for a ``with`` block: ``make run``'s, Stripe on when asked, and no
    periodic reconciler: the cold starts replay recorded calls, records with
    their recorded times, which a sweep would fail as stuck once the bench has
    run longer than the grace period (the memory sweep invokes it itself)."""
    settings = {"LOCAL_RECONCILE_SECONDS": "0"}
    if stripe:
        settings["STRIPE_API_KEY"] = "sk_test_local"
    return ChildStack(workdir / name, 90, **settings)


# --- throughput ----------------------------------------------------------------------
def throughput(stack: ChildStack, concurrency: int, signups: int, attempts: int = 2) -> dict[str, Any]:
    """``signups`` sign-ups by ``concurrency`` clients at once, each approved.

    LoadRun stops at the first sign-up refused outright (a Cognito confirm
    whose trigger timed out, say); that is reported, and the burst tried again.
    """
    from scripts.bench.load import LoadRun

    failures: list[str] = []
    for _ in range(attempts):
        run = LoadRun(stack.outputs, stack.state_dir, workers=concurrency)
        try:
            report = run.run(signups, reject_every=0, seconds=180)
        except Exception as error:
            failures.append(f"{type(error).__name__}: {error}")
            time.sleep(5)  # let the stack finish what the failed burst started
            continue
        report.update(concurrency=concurrency, failedAttempts=failures)
        return report
    return {"concurrency": concurrency, "signups": signups, "error": failures[-1],
            "failedAttempts": failures}


# --- the cost model --------------------------------------------------------------------
def one_onboarding(stack: ChildStack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A real happy-path onboarding on the stack: its counts, and its execution history."""
    from scripts.bench.load import LoadRun

    run = LoadRun(stack.outputs, stack.state_dir, workers=1)
    tenant = run.sign_up(f"bench-cost-{uuid.uuid4().hex[:8]}@example.com")
    tenant["decision"] = "approved"
    run.await_token(tenant, 60)
    if "token" not in tenant:
        raise RuntimeError("the cost-model onboarding never reached the wait")
    run.decide(tenant)
    run.await_final(tenant, 60)
    if tenant.get("final") != "active":
        raise RuntimeError(f"the cost-model onboarding ended {tenant.get('final')}")
    arn = f"{run.execution_prefix}:{tenant['tenantId']}"
    eventually(lambda: run.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", 30,
               "the cost-model execution did not end", interval=0.2)
    events = execution_history(run.sfn, arn)
    return count_history(events, stripe=bool(stack.outputs.get("stripe"))), events


def one_offboarding(run: Any, tenant_id: str) -> list[dict[str, Any]]:
    """A real offboarding of an active tenant on the stack, asked for through the
    admin API as an admin would (``run``: a scripts.bench.load.LoadRun on it): the
    history of its run of offboarding.json, once it has succeeded."""
    from chalicelib.workflow import execution_arn, offboarding_name

    status, answer, _ = run.admin_post(f"/tenants/{tenant_id}/offboarding",
                                    {"reason": "bench: a real offboarding run"})
    if status != 202:
        raise RuntimeError(f"the bench's offboarding of {tenant_id} answered {status}")
    attempt = answer["attempt"]
    arn = execution_arn(run.outputs["functionEnvironment"]["OFFBOARDING_STATE_MACHINE_ARN"],
                        offboarding_name(tenant_id, attempt))

    def ended() -> str | None:
        try:
            status = str(run.sfn.describe_execution(executionArn=arn)["status"])
        except run.sfn.exceptions.ExecutionDoesNotExist:
            return None
        return None if status == "RUNNING" else status

    ended_as = eventually(ended, 60, f"the offboarding run {arn} did not end", interval=0.2)
    if ended_as != "SUCCEEDED":
        raise RuntimeError(f"the bench's offboarding run {arn} ended {ended_as}")
    return execution_history(run.sfn, arn)


def execution_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, in order."""
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events += [dict(event) for event in page["events"]]
    return events


def count_history(events: list[dict[str, Any]], stripe: bool) -> dict[str, Any]:
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    lambda_tasks = [e for e in events if e["type"] == "LambdaFunctionScheduled"]
    callback_tasks = [
        e for e in events if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"].get("resourceType") == "lambda"
    ]
    by_id = {e["id"]: e for e in events}
    durations = []
    for event in events:  # LambdaFunctionStarted -> Succeeded, engine's own clock
        if event["type"] == "LambdaFunctionSucceeded":
            started = by_id.get(event.get("previousEventId"))
            if started and started["type"] == "LambdaFunctionStarted":
                durations.append((event["timestamp"] - started["timestamp"]).total_seconds())
    states = [e["stateEnteredEventDetails"]["name"] for e in entered]
    return {
        "stripe": stripe,
        "transitions": len(entered),
        "states": states,
        "stateMachineLambdas": len(lambda_tasks) + len(callback_tasks),
        # outside the state machine: the Cognito trigger that started it, and
        # the API call that delivered the decision; one each per onboarding
        "otherLambdas": 2,
        "localTaskMedianMs": statistics.median(durations) * 1000 if durations else None,
    }


def cost_per_thousand(counts: dict[str, Any], memory_mb: float) -> dict[str, Any]:
    invocations = counts["stateMachineLambdas"] + counts["otherLambdas"]
    sfn = counts["transitions"] * PRICES["sfnPerTransition"] * 1000
    requests = invocations * PRICES["lambdaPerRequest"] * 1000
    compute = (invocations * ASSUMED_DURATION_S * memory_mb / 1024
               * PRICES["lambdaPerGbSecond"] * 1000)
    return {
        "invocations": invocations,
        "stepFunctions": sfn,
        "lambdaRequests": requests,
        "lambdaCompute": compute,
        "total": sfn + requests + compute,
    }


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tenant-onboarding-bench-"))
