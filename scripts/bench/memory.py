"""Each function's cold invocation at the CPU share of each memory size (for bench.py).

Lambda gives a function CPU in proportion to its memory: MemorySize / 1,769 MB
of one vCPU (1,769 MB is one full vCPU, per Lambda's documentation). A cold
invocation's work here (interpreter start, imports, clients, the handler's
calls) is CPU-bound, so the share decides its time. The sweep runs each
function's cold invocation as ``scripts.bench.cold`` does (a fresh process from
the unzipped package, one real event, against the local stack) with the
process held to that share by the kernel: a cgroup v1 ``cpu`` controller group
with ``cpu.cfs_quota_us = 100000 * M / 1769`` per ``cpu.cfs_period_us`` of
100000, which the process joins before it starts Python.

Every function is swept: both Cognito triggers; the tasks of a real onboarding
execution, in its order; the API, deciding (``POST /tenant/finalize``) and
listing (``GET /tenants``, the console's first page); the offboarding tasks,
with the events of a real offboarding run (of the tenant the cost model
onboarded), on the tenant the run's onboarding tasks have just made active; and
the reconciler. Each handler gets a context as Lambda's: its time left counts
down from the function's own timeout (``lambda_timeout`` in
.chalice/config.json, as packaged), so its calls keep to the budget they would
have in Lambda (chalicelib/budget.py), not to the 20 s of a call without one.
An invocation that fails (its budget spent, say) is timed until it failed, and
counted as failed at that size.

Not in these figures: Lambda's own start (downloading and unpacking the code,
the sandbox), and TLS to real endpoints (the local stack is plain HTTP on
127.0.0.1): in an account a cold start takes longer by both.
"""
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.bench import cold as bench_cold
from scripts.bench import flow as bench_flow

FULL_CORE_MB = 1769
SIZES = (128, 256, 512, 1024, 1769)
PERIOD_US = 100_000
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
# Cold-invocation targets at the chosen size (issue 17): Cognito gives a trigger
# 5 s in all, so 1 s leaves a 5x margin; the API answers a person.
TARGET_MS = {"pre_sign_up": 1000, "post_confirmation": 1000, "api": 1500}
SCHEDULED_EVENT = {"version": "0", "id": "bench", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": bench_cold.ACCOUNT,
                   "time": "2026-01-01T00:00:00Z", "region": bench_cold.REGION,
                   "resources": [], "detail": {}}


# Invoked by the sweep, but not once per onboarding: left out of its cost.
API = "api_handler"  # the API deciding: POST /tenant/finalize
API_LISTING = "api_handler: GET /tenants"
RELEASE, FINISH_OFFBOARDING = "release_tenant_resources", "finish_offboarding"
NOT_PER_ONBOARDING = frozenset({"reconcile", API_LISTING, RELEASE, FINISH_OFFBOARDING})

# A fresh process: import app, the handler's first (cold) call, then the same
# event again (warm: every handler is idempotent). It prints when the cold call
# ended, by the wall clock, so the cold time counts the interpreter's start.
# Each call gets a context as Lambda's, its time left counting down from the
# function's timeout from the moment the handler is called (Lambda's init phase
# has a limit of its own).
SWEEP_CHILD = """
import json, sys, time
spec = json.loads(sys.argv[1])


class Context:
    def __init__(self):
        self._deadline = time.monotonic() + spec["timeoutMs"] / 1000
        self.function_name = spec["function"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec["arn"]
        self.memory_limit_in_mb = spec["memoryMb"]
        self.aws_request_id = "bench"
        self.log_group_name = "/aws/lambda/" + spec["function"]
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


import app
handler = app.app if spec["handler"] == "app" else getattr(app, spec["handler"])
try:
    result, error = handler(spec["event"], Context()), None
except Exception as failed:  # Lambda reports it; the sweep counts it
    result, error = None, type(failed).__name__ + ": " + str(failed)
cold_ended = time.time()
began = time.perf_counter()
try:
    handler(spec["event"], Context())
except Exception:
    pass
warm = time.perf_counter() - began
print(json.dumps({"result": result, "error": error, "coldEnded": cold_ended,
                  "warmMs": warm * 1000}, default=str))
"""


def cpu_quota_us(memory_mb: int) -> int:
    """The cfs quota per 100 ms period that gives ``memory_mb``'s share of one core."""
    return max(1000, round(PERIOD_US * memory_mb / FULL_CORE_MB))


def unavailable() -> str | None:
    """Why this machine cannot hold a process to a CPU share (None: it can)."""
    if not (CGROUP_CPU / "cpu.cfs_quota_us").exists():
        return "no cgroup v1 cpu controller at /sys/fs/cgroup/cpu"
    if os.geteuid() != 0:
        return "making a cgroup needs root"
    return None


class CpuShare:
    """A cgroup that holds the processes that join it to ``memory_mb``'s CPU share."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.path = CGROUP_CPU / f"tenant-onboarding-bench-{os.getpid()}-{memory_mb}mb"

    def __enter__(self) -> "CpuShare":
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(cpu_quota_us(self.memory_mb)))
        return self

    def join(self) -> None:
        """Run in the child between fork and exec: it and its children are held."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def throttled_ms(self) -> float:
        """How long the kernel has held the group's processes back, in all."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "throttled_time":
                return int(value) / 1e6
        return 0.0

    def __exit__(self, *exc: Any) -> None:
        try:
            self.path.rmdir()  # its processes have all ended
        except OSError:
            pass


def pre_sign_up_event(entries: bench_cold.Entries, tenant: dict[str, str]) -> dict[str, Any]:
    """Cognito's PreSignUp_SignUp event for ``tenant``, from the sample trigger event."""
    event = entries.trigger_event(tenant)  # a new event (substitute copies)
    event["triggerSource"] = "PreSignUp_SignUp"
    event["request"] = {"userAttributes": {"email": tenant["email"], "name": tenant["name"]},
                        "validationData": None}
    event["response"] = {"autoConfirmUser": False, "autoVerifyEmail": False,
                         "autoVerifyPhone": False}
    return event


class Sweep:
    """Cold invocations of every entry point at every size, sizes interleaved
    within a run so whatever else the machine does falls on all of them alike."""

    def __init__(self, entries: bench_cold.Entries, sizes: tuple[int, ...] = SIZES) -> None:
        self.entries = entries
        self.sizes = sizes
        self.samples: dict[str, dict[int, list[float]]] = {}  # cold, seconds
        self.warm: dict[str, dict[int, list[float]]] = {}  # the second call, seconds
        self.failed: dict[str, dict[int, list[str]]] = {}  # the cold calls' errors
        self.throttled: dict[int, float] = {}
        self.offboarding: tuple[dict[str, str], list[dict[str, Any]]] | None = None
        self.runs = 0  # as run() was asked

    def prepare(self) -> None:
        """Untimed, once: a real offboarding run, whose tasks' events the sweep
        replays; of the tenant the cost model onboarded (active since)."""
        if self.offboarding is not None:
            return
        e = self.entries
        history = bench_flow.one_offboarding(e.load, e.history_tenant["tenantId"])
        tenant, tasks = bench_cold.tasks_from_history(history, e.functions)
        handlers = [task["handler"] for task in tasks]
        if handlers != [RELEASE, FINISH_OFFBOARDING]:
            raise RuntimeError(f"the offboarding run invoked {handlers}, not the release and "
                               "the finish the sweep expects")
        self.offboarding = tenant, tasks

    def _invoke(self, share: CpuShare, entry: str, handler: str, event: Any) -> Any:
        """One cold invocation (and a warm one) of ``handler`` as ``entry``; its result
        (None when it failed: the time until then is kept, and the failure)."""
        e = self.entries
        function = function_of(entry)
        spec = {"handler": handler, "event": event, "function": function,
                "arn": f"arn:aws:lambda:{bench_cold.REGION}:{bench_cold.ACCOUNT}:function:{function}",
                "timeoutMs": e.functions.timeout_seconds[handler] * 1000,
                "memoryMb": share.memory_mb}
        started = time.time()
        _, printed = bench_cold.run_child(SWEEP_CHILD, spec, e.env(handler), e.layout,
                                          preexec=share.join)
        self.samples.setdefault(entry, {}).setdefault(share.memory_mb, []).append(
            printed["coldEnded"] - started)
        self.warm.setdefault(entry, {}).setdefault(share.memory_mb, []).append(
            printed["warmMs"] / 1000)
        error, result = printed["error"], printed["result"]
        if not error and handler == "app" and result.get("statusCode", 200) >= 400:
            # Chalice answers an exception (a spent budget: 503) as HTTP: a failure all the same
            error, result = f"HTTP {result.get('statusCode')}", None
        if error:
            self.failed.setdefault(entry, {}).setdefault(share.memory_mb, []).append(error)
        return result

    def one_run(self, share: CpuShare) -> None:
        e = self.entries
        self._invoke(share, "pre_sign_up", "pre_sign_up",
                     pre_sign_up_event(e, bench_cold.fresh_tenant()))
        self._invoke(share, "post_confirmation", bench_cold.TRIGGER,
                     e.trigger_event(bench_cold.fresh_tenant()))
        self._invoke(share, API, "app", e.api_event(e.tokens.pop()))
        self._invoke(share, API_LISTING, "app",
                     bench_cold.admin_request("GET", "/tenants", {"status": "onboarding"}))
        self._invoke(share, "reconcile", "reconcile", dict(SCHEDULED_EVENT, id=str(uuid.uuid4())))
        # the onboarding tasks, then the offboarding ones, of one tenant: each
        # finds the record as the one before left it (a failure ends the run here)
        tenant = bench_cold.fresh_tenant()
        mapping = e.chain_mapping(tenant)
        for task in e.tasks:
            result = self._invoke(share, task["handler"], task["handler"],
                                  bench_cold.substitute(task["event"], mapping))
            if result is None:
                return
            bench_cold.learn(bench_cold.substitute(task["output"], mapping), result, mapping)
        if self.offboarding is None:
            raise RuntimeError("Sweep.prepare() has not run")
        offboarded, tasks = self.offboarding
        begin_offboarding(e, tenant["tenantId"])
        for task in tasks:
            event = bench_cold.substitute(task["event"], bench_cold.identity(offboarded, tenant))
            if self._invoke(share, task["handler"], task["handler"], event) is None:
                return

    def run(self, runs: int, progress: Callable[[str], None] | None = None) -> None:
        self.runs = runs
        self.prepare()
        for run in range(runs):
            for size in self.sizes:
                with CpuShare(size) as share:
                    self.one_run(share)
                    self.throttled[size] = self.throttled.get(size, 0.0) + share.throttled_ms()
                if progress:
                    progress(f"memory sweep: run {run + 1}/{runs} at {size} MB done")

    def table(self, warm: bool = False) -> dict[str, dict[int, float]]:
        """Median cold (or warm) invocation (ms) per entry and size."""
        return {entry: {size: statistics.median(times) * 1000
                        for size, times in by_size.items()}
                for entry, by_size in (self.warm if warm else self.samples).items()}


def function_of(entry: str) -> str:
    """The function an entry of the sweep invokes ("api_handler: GET /tenants": the API's)."""
    return entry.split(":", 1)[0]


def begin_offboarding(entries: bench_cold.Entries, tenant_id: str) -> None:
    """Untimed: the tenant's record as ``POST /tenants/{id}/offboarding`` leaves
    it (chalicelib's own write), without starting a run: the sweep invokes the
    run's tasks itself."""
    from chalicelib.clock import utc_now
    from chalicelib.tenants import TenantRepository

    ddb = entries.session.client("dynamodb", endpoint_url=entries.outputs["awsEndpoint"])
    tenants = TenantRepository(ddb, entries.outputs["tableName"])
    record = tenants.require(tenant_id)
    tenants.begin_offboarding(tenant_id, record, {
        "requestedBy": "bench-admin@example.com", "requestedAt": utc_now(),
        "reason": "bench: the memory sweep", "attempt": 1})


def invocation_cost(ms: float, memory_mb: int) -> float:
    """Lambda's price of one invocation of ``ms`` at ``memory_mb`` (arm64 aside)."""
    return (bench_flow.PRICES["lambdaPerRequest"]
            + ms / 1000 * memory_mb / 1024 * bench_flow.PRICES["lambdaPerGbSecond"])


def cost_per_thousand(table: dict[str, dict[int, float]], sizes: dict[str, int]) -> float:
    """Lambda's price of 1,000 onboardings with the durations of ``table`` (the
    cold ones: every invocation cold, an upper bound; or the warm ones), each
    entry at the size ``sizes`` gives it. One onboarding (approved) invokes each
    entry of the table once, except those of NOT_PER_ONBOARDING: the reconciler
    runs on its schedule, the console lists tenants when an admin looks, and a
    tenant is offboarded once in its life, if ever."""
    return 1000 * sum(invocation_cost(by_size[sizes[entry]], sizes[entry])
                      for entry, by_size in table.items() if entry not in NOT_PER_ONBOARDING)


def chosen_sizes(template: dict[str, Any]) -> dict[str, int]:
    """Each function's MemorySize in the built template (its handler's name; the API: api_handler)."""
    sizes = {}
    for spec in template["Resources"].values():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        handler = spec["Properties"]["Handler"].split(".", 1)[1]
        memory = spec["Properties"].get("MemorySize") or template.get("Globals", {}).get(
            "Function", {}).get("MemorySize", 128)
        sizes["api_handler" if handler == "app" else handler] = int(memory)
    return sizes


def summarize(sweep: Sweep, template: dict[str, Any]) -> dict[str, Any]:
    table, warm = sweep.table(), sweep.table(warm=True)
    chosen = chosen_sizes(template)
    at_chosen_size = {entry: chosen.get(function_of(entry), 128) for entry in table}
    rows = []
    for entry, by_size in table.items():
        size = at_chosen_size[entry]
        function = function_of(entry)
        target = TARGET_MS.get("api" if function == API else function)
        at_chosen = by_size.get(size)
        failed = sweep.failed.get(entry, {})
        rows.append({
            "function": entry, "coldMs": {str(s): round(ms) for s, ms in by_size.items()},
            "warmMs": {str(s): round(ms) for s, ms in warm[entry].items()},
            "chosenMb": size, "chosenMs": round(at_chosen) if at_chosen is not None else None,
            "targetMs": target,
            "met": (None if target is None or at_chosen is None
                    else at_chosen <= target and size not in failed),
            # the cold calls that failed, by size, and the first one's error
            "failed": {str(s): len(errors) for s, errors in failed.items()},
            "firstErrors": {str(s): errors[0] for s, errors in failed.items()},
        })
    def costs(sizes: dict[str, int]) -> dict[str, float] | None:
        """None where an entry has no sample at its size (an earlier task failed in every run)."""
        if any(sizes[entry] not in by_size for entry, by_size in table.items()):
            return None
        return {"cold": round(cost_per_thousand(table, sizes), 4),
                "warm": round(cost_per_thousand(warm, sizes), 4)}

    return {
        "sizes": list(sweep.sizes), "runs": sweep.runs,
        "rows": rows,
        "costPerThousandAllAt": {str(size): costs(dict.fromkeys(table, size))
                                 for size in sweep.sizes},
        "costPerThousandChosen": costs(at_chosen_size),
        "throttledMs": {str(k): round(v) for k, v in sweep.throttled.items()},
        "samplesMs": {f: {str(s): [round(t * 1000) for t in ts] for s, ts in by_size.items()}
                      for f, by_size in sweep.samples.items()},
    }


def tokens_needed(runs: int, sizes: tuple[int, ...] = SIZES) -> int:
    """Waiting executions the sweep's API invocations decide."""
    return runs * len(sizes)


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.bench.memory``: the sweep alone, on a stack of its own, printed as JSON."""
    import argparse
    import contextlib
    import shutil
    import sys

    from scripts.bench import package as bench_package
    from scripts.bench.report import cold_stack, progress

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs of every size (median)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="comma-separated memory sizes in MB (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = tuple(int(size) for size in args.sizes.split(",") if size.strip())
    reason = unavailable()
    if reason:
        print(f"memory sweep: cannot hold a process to a CPU share here: {reason}",
              file=sys.stderr)
        return 2
    workdir = bench_package.new_workdir()
    try:
        with contextlib.ExitStack() as stacks:
            package = bench_package.build_package(workdir / "build")
            layout = bench_package.LambdaLayout(workdir / "layout", package)
            stack, _, history, tokens = cold_stack(workdir, stacks,
                                                   tokens_needed(args.runs, sizes) + 1)
            entries = bench_cold.prepare_cold_starts(stack.outputs, stack.state_dir, history, 0,
                                                     layout, package["template"], tokens)
            sweep = Sweep(entries, sizes)
            sweep.run(args.runs, progress)
            print(json.dumps(summarize(sweep, package["template"]), indent=2))
    except BaseException:
        progress(f"failed; logs and files kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)  # the package, its layout, the stack's state
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
