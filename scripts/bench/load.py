"""Load run against the local stack: N sign-ups at once, every one decided.

    make load                       # N=200 against a stack it starts itself
    python -m scripts.bench.load --signups 50 --stack .local/stack.json   # a running stack

Checks that nothing is lost or duplicated: N records, each in its expected
final state; exactly one outcome event per tenant; at most one Stripe
customer per tenant (when Stripe is on); no execution left running; nothing
failed. Reports throughput and sign-up -> awaiting-approval latency.
Exits 1 when a check fails.
"""
import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scripts.shared import TimedOut, eventually

PASSWORD = "Correct-Horse-9"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class LoadRun:
    def __init__(self, outputs: dict[str, Any], state_dir: Path, workers: int = 32) -> None:
        import boto3
        from botocore.config import Config

        self.outputs = outputs
        self.state_dir = state_dir
        self.workers = workers
        session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=outputs["region"]
        )
        config = Config(max_pool_connections=workers * 2, retries={"mode": "standard"})
        endpoint = outputs["awsEndpoint"]
        self.cognito = session.client("cognito-idp", endpoint_url=endpoint, config=config)
        self.sfn = session.client("stepfunctions", endpoint_url=endpoint, config=config)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint, config=config)
        self.sesv2 = session.client("sesv2", endpoint_url=endpoint, config=config)
        self.execution_prefix = outputs["stateMachineArn"].replace(":stateMachine:", ":execution:")

    # --- one tenant's journey ----------------------------------------------------
    def sign_up(self, email: str) -> dict[str, Any]:
        started = time.time()
        sub = self.cognito.sign_up(
            ClientId=self.outputs["userPoolClientId"],
            Username=email,
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": f"Load {email}"}],
        )["UserSub"]
        self.cognito.confirm_sign_up(
            ClientId=self.outputs["userPoolClientId"], Username=email,
            ConfirmationCode=self.confirmation_code(email),
        )
        return {"email": email, "tenantId": sub, "signedUp": started}

    def confirmation_code(self, email: str) -> str:
        """The code the local Cognito mailed ``email`` (the stack's outbox.jsonl)."""
        from scripts.local.client import last_mail

        return last_mail(self.state_dir, email, "code")

    @property
    def admin_token(self) -> str:
        """An admin's ID token: the decisions go through the admin authorizer."""
        if not getattr(self, "_admin_token", None):
            from scripts.local.client import new_local_admin

            self._admin_token = new_local_admin(self.outputs, self.state_dir,
                                                f"load-admin-{uuid.uuid4().hex[:8]}@example.com")
        return self._admin_token

    def await_token(self, tenant: dict[str, Any], seconds: float) -> None:
        arn = f"{self.execution_prefix}:{tenant['tenantId']}"

        def scheduled() -> bool:
            try:
                events = self.sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
            except self.sfn.exceptions.ExecutionDoesNotExist:
                return False
            for event in events:
                if event["type"] == "TaskScheduled":
                    details = json.loads(event["taskScheduledEventDetails"]["parameters"])
                    tenant["token"] = details["Payload"]["taskToken"]
                    # the engine's own timestamp: polling delay is not counted
                    tenant["awaiting"] = event["timestamp"].timestamp()
                    return True
            return False

        # slow polling: the engine's timestamp is exact anyway, and fast
        # polling would load the stack it measures
        try:
            eventually(scheduled, seconds, "never reached awaiting approval", interval=0.5)
        except TimedOut:
            tenant["error"] = "never reached awaiting approval"

    def admin_post(self, path: str, body: dict[str, Any]) -> tuple[int, Any, int]:
        """POST to the admin API as the run's admin, as a client should: (status,
        the answer's JSON, tries)."""
        return post_as_a_client_would(self.outputs["apiUrl"] + path, self.admin_token, body)

    def decide(self, tenant: dict[str, Any]) -> None:
        body = {"taskToken": tenant["token"], "status": tenant["decision"]}
        if tenant["decision"] == "rejected":
            body["reason"] = "load test rejection"
        tenant["decided"] = time.time()
        tenant["decisionStatus"], _, tries = self.admin_post("/tenant/finalize", body)
        tenant["decisionRetries"] = tries - 1

    def await_final(self, tenant: dict[str, Any], seconds: float) -> None:
        expected = "active" if tenant["decision"] == "approved" else "rejected"

        def final() -> bool:
            item = self.ddb.get_item(
                TableName=self.outputs["tableName"],
                Key={"pk": {"S": tenant["tenantId"]}, "sk": {"S": "tenant"}},
                ConsistentRead=True,
            ).get("Item", {})
            status = item.get("status", {}).get("S")
            if not status or status == "onboarding":
                return False
            tenant["final"] = status
            execution = self.sfn.describe_execution(
                executionArn=f"{self.execution_prefix}:{tenant['tenantId']}"
            )
            stopped = execution.get("stopDate")
            tenant["finalAt"] = stopped.timestamp() if stopped else time.time()
            return True

        try:
            eventually(final, seconds, "never left onboarding", interval=0.5)
        except TimedOut:
            tenant["error"] = f"never left onboarding (expected {expected})"

    # --- the whole run -------------------------------------------------------------
    def run(self, signups: int, reject_every: int, seconds: float) -> dict[str, Any]:
        run_id = uuid.uuid4().hex[:8]
        emails = [f"load-{run_id}-{n}@example.com" for n in range(signups)]
        _ = self.admin_token  # one admin, signed in before the clock starts
        began = time.time()
        with ThreadPoolExecutor(self.workers) as pool:
            tenants = list(pool.map(self.sign_up, emails))
            for n, tenant in enumerate(tenants):
                tenant["decision"] = "rejected" if reject_every and n % reject_every == 0 else "approved"
            list(pool.map(lambda t: self.await_token(t, seconds), tenants))
            waiting = [t for t in tenants if "token" in t]
            all_waiting = max((t["awaiting"] for t in waiting), default=time.time())
            list(pool.map(self.decide, waiting))
            list(pool.map(lambda t: self.await_final(t, seconds), waiting))
        ended = time.time()
        return self.report(tenants, began, all_waiting, ended)

    def report(self, tenants, began, all_waiting, ended) -> dict[str, Any]:
        ids = {t["tenantId"] for t in tenants}
        to_waiting = [t["awaiting"] - t["signedUp"] for t in tenants if "awaiting" in t]
        to_final = [t["finalAt"] - t["decided"] for t in tenants if "finalAt" in t]
        # executions end after their outcome event went out: wait for them first
        running = self._running_executions(ids)
        events = self._outcome_events(ids)
        per_tenant: dict[str, list[str]] = {}
        for event in events:
            per_tenant.setdefault(event["detail"]["tenantId"], []).append(event["detail-type"])
        expected_type = {
            t["tenantId"]: "Tenant Onboarding Complete" if t["decision"] == "approved"
            else "Tenant Onboarding Rejected" for t in tenants
        }
        problems = []
        for t in tenants:
            expected = "active" if t["decision"] == "approved" else "rejected"
            if t.get("error"):
                problems.append(f"{t['tenantId']}: {t['error']}")
            elif t.get("decisionStatus") != 200 and not (
                    # a retry whose first try was delivered, its answer lost: already decided
                    t.get("decisionStatus") == 409 and t.get("decisionRetries", 0) > 0):
                problems.append(f"{t['tenantId']}: decision answered {t.get('decisionStatus')}")
            elif t.get("final") != expected:
                problems.append(f"{t['tenantId']}: ended {t.get('final')}, expected {expected}")
            if per_tenant.get(t["tenantId"]) != [expected_type[t["tenantId"]]]:
                problems.append(f"{t['tenantId']}: outcome events {per_tenant.get(t['tenantId'])}")
        duplicates = self._duplicate_customers(ids) if self.outputs.get("stripe") else {}
        problems += [f"{tid}: {n} Stripe customers" for tid, n in duplicates.items()]
        problems += [f"{arn}: still running" for arn in running]
        records = self._record_count(ids)
        if records != len(tenants):
            problems.append(f"{records} records for {len(tenants)} sign-ups")
        ses_tenants = self._ses_tenants(ids)
        if self.outputs.get("contactListMode") == "subscriber-store":
            for t in tenants:
                held = f"tenant-{t['tenantId']}" in ses_tenants
                if held != (t.get("final") == "active"):
                    problems.append(f"{t['tenantId']} ({t.get('final')}): "
                                    f"{'still holds' if held else 'has no'} SES tenant")
        return {
            "signups": len(tenants),
            "records": records,
            "active": sum(t.get("final") == "active" for t in tenants),
            "rejected": sum(t.get("final") == "rejected" for t in tenants),
            "failed": sum(t.get("final") == "failed" for t in tenants),
            "outcomeEvents": len(events),
            "sesTenants": len(ses_tenants),
            "stripe": bool(self.outputs.get("stripe")),
            "duplicateStripeCustomers": len(duplicates),
            "decisionsRetried": sum(t.get("decisionRetries", 0) > 0 for t in tenants),
            "executionsStillRunning": len(running),
            "signupsPerSecondToAwaiting": round(len(to_waiting) / max(all_waiting - began, 1e-9), 2),
            "signupToAwaitingP50s": round(percentile(to_waiting, 0.50), 3),
            "signupToAwaitingP95s": round(percentile(to_waiting, 0.95), 3),
            "decisionToFinalP50s": round(percentile(to_final, 0.50), 3),
            "decisionToFinalP95s": round(percentile(to_final, 0.95), 3),
            "wallSeconds": round(ended - began, 2),
            "problems": problems,
        }

    def _outcome_events(self, ids) -> list[dict[str, Any]]:
        path = self.state_dir / "events.jsonl"
        events = [json.loads(line) for line in path.read_text().splitlines() if line]
        return [
            e for e in events
            if e["detail-type"].startswith("Tenant Onboarding ")
            and e["detail-type"] != "Tenant Onboarding Approval Requested"
            and e["detail"].get("tenantId") in ids
        ]

    def _running_executions(self, ids, seconds: float = 30) -> list[str]:
        """Executions of this run still running once they had time to finish
        (the record turns final a moment before its execution ends)."""
        def running() -> list[str]:
            found: list[str] = []
            for page in self.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.outputs["stateMachineArn"], statusFilter="RUNNING"
            ):
                found += [e["executionArn"] for e in page["executions"] if e["name"] in ids]
            return found

        try:
            eventually(lambda: not running(), seconds, "executions still running", interval=0.2)
        except TimedOut:
            pass
        return running()

    def _ses_tenants(self, ids) -> set[str]:
        """The SES tenants this run's tenants hold (subscriber-store mode)."""
        names: set[str] = set()
        for page in self.sesv2.get_paginator("list_tenants").paginate():
            names |= {t["TenantName"] for t in page.get("Tenants", [])}
        return {name for name in names if name.removeprefix("tenant-") in ids}

    def _record_count(self, ids) -> int:
        count = 0
        for page in self.ddb.get_paginator("scan").paginate(
            TableName=self.outputs["tableName"], ProjectionExpression="pk, sk"
        ):
            count += sum(
                1 for item in page["Items"]
                if item["sk"]["S"] == "tenant" and item["pk"]["S"] in ids
            )
        return count

    def _duplicate_customers(self, ids) -> dict[str, int]:
        import requests

        base = self.outputs["stripeApiBase"]
        key = self.outputs.get("stripeTestKey", "sk_test_local")
        counts: dict[str, int] = {}
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 100, **({"starting_after": after} if after else {})}
            page = requests.get(f"{base}/v1/customers", params=params, auth=(key, "")).json()
            for customer in page["data"]:
                tenant_id = customer.get("metadata", {}).get("tenantId")
                if tenant_id in ids:
                    counts[tenant_id] = counts.get(tenant_id, 0) + 1
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
        return {tid: n for tid, n in counts.items() if n > 1}


MAX_TRIES = 5  # a client's tries of one request the API answers 503 with Retry-After


def post_as_a_client_would(url: str, token: str, body: Any) -> tuple[int, Any, int]:
    """POST JSON; on a 503 with Retry-After (the API out of time while a service,
    or here the one-process local stack, was slow), wait that long, jittered so
    the clients refused together do not return together, and send it again, up
    to MAX_TRIES: (the last status, its JSON or None, tries)."""
    for attempt in range(1, MAX_TRIES + 1):
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": token})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null"), attempt
        except urllib.error.HTTPError as error:
            retry_after = error.headers.get("Retry-After")
            if error.code != 503 or not retry_after or attempt == MAX_TRIES:
                return error.code, None, attempt
        time.sleep(float(retry_after) * random.uniform(1, 1.5))
    raise AssertionError("unreachable")


def print_report(report: dict[str, Any]) -> None:
    width = max(len(k) for k in report)
    for key, value in report.items():
        if key != "problems":
            print(f"  {key:<{width}}  {value}")
    if report["problems"]:
        print(f"  PROBLEMS ({len(report['problems'])}):")
        for problem in report["problems"][:50]:
            print(f"    {problem}")
    else:
        print("  no onboarding lost, duplicated or failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signups", type=int, default=200)
    parser.add_argument("--reject-every", type=int, default=4, help="reject every Nth tenant (0: none)")
    parser.add_argument("--stack", help="stack.json of a running local stack; default: start one")
    parser.add_argument("--stripe", action="store_true", help="start the stack with localstripe")
    parser.add_argument("--timeout", type=float, default=600, help="seconds each stage may take")
    parser.add_argument("--workers", type=int, default=32, help="concurrent clients")
    parser.add_argument("--ses-quotas", action="store_true",
                        help="the stack enforces SES's quotas (LOCAL_ENFORCE_SES_QUOTAS=1)")
    args = parser.parse_args(argv)

    if args.stack:
        stack_json = Path(args.stack)
        report = LoadRun(json.loads(stack_json.read_text()), stack_json.parent, args.workers).run(
            args.signups, args.reject_every, args.timeout
        )
    else:
        report = run_with_own_stack(args.signups, args.reject_every, args.stripe, args.timeout,
                                    args.workers, **({"LOCAL_ENFORCE_SES_QUOTAS": "1"}
                                                     if args.ses_quotas else {}))
    print(f"Load run: {args.signups} sign-ups against the local stack")
    print_report(report)
    return 1 if report["problems"] else 0


def run_with_own_stack(signups: int, reject_every: int, stripe: bool, seconds: float,
                       workers: int = 32, **settings: str) -> dict[str, Any]:
    """A load run against a stack of its own, with the stack ``settings`` given
    (LOCAL_ENFORCE_SES_QUOTAS=1, say)."""
    import tempfile

    from scripts.local.child import ChildStack

    state_dir = Path(tempfile.mkdtemp(prefix="tenant-onboarding-load-")) / "state"
    if stripe:
        settings["STRIPE_API_KEY"] = "sk_test_local"
    with ChildStack(state_dir, ready_seconds=60, **settings) as stack:
        return LoadRun(stack.outputs, state_dir, workers).run(signups, reject_every, seconds)


if __name__ == "__main__":
    sys.exit(main())
