"""A stage of the app inside moto, in process: the workflow-test tier.

The real statemachine.json runs in moto's Step Functions engine; its Lambda
tasks run the app's own handlers (scripts/local/lambdas.py, the same runtime
the local stack uses); events on the bus land in an SQS queue the test reads.
"""
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import boto3
from moto import mock_aws

from chalicelib import dependencies as deps
from scripts.deploy.template import stripe_secret_name
from scripts.local.aws import behave_like_aws
from scripts.local.lambdas import LocalLambdas
from scripts.local.resources import provision_stage
from scripts.local.ses import reproduce_ses_contact_lists

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE = "local"  # .chalice/config.json's stage for chalice.test.Client


class Stage:
    def __init__(
        self,
        monkeypatch: Any,
        approval_timeout_seconds: Optional[int] = None,
        stripe_api_base: Optional[str] = None,
        stripe_api_key: str = "sk_test_local",
        contact_list_mode: str = "list-per-tenant",
        enforce_ses_quotas: bool = False,
        retry_interval_seconds: Optional[int] = 1,
    ) -> None:
        self._retry_interval = retry_interval_seconds
        self._contact_list_mode = contact_list_mode
        self._enforce_ses_quotas = enforce_ses_quotas
        self._monkeypatch = monkeypatch
        self._approval_timeout = approval_timeout_seconds
        self._stripe_base = stripe_api_base
        self._stripe_key = stripe_api_key
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})

    # --- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Stage":
        self._mock.start()
        behave_like_aws(self._enforce_ses_quotas)
        session = boto3.session.Session(region_name=REGION)
        self.ddb = session.client("dynamodb")
        self.sfn = session.client("stepfunctions")
        self.sqs = session.client("sqs")
        self.sesv2 = session.client("sesv2")
        events = session.client("events")
        self.resources = provision_stage(
            session,
            STAGE,
            ACCOUNT,
            contact_list_mode=self._contact_list_mode,
            stripe=bool(self._stripe_base),
            approval_timeout_seconds=self._approval_timeout,
            retry_interval_seconds=self._retry_interval,
        )
        self.apply_environment(self._monkeypatch)
        self.state_machine_arn = self.resources.ref("StateMachine")
        self.table_name = self.resources.ref("TenantTable")
        self.event_bus = self.resources.ref("EventBus")
        self.shared_contact_list = self.resources.environment["SHARED_CONTACT_LIST_NAME"]
        if self._stripe_base:
            session.client("secretsmanager").create_secret(
                Name=stripe_secret_name(STAGE), SecretString=self._stripe_key
            )
        self._capture_events(events)

        import app

        self.app = app.app
        self.lambdas = LocalLambdas(app.app, self.resources.function_names)
        boto3.setup_default_session(region_name=REGION)
        self.lambdas.install(boto3.DEFAULT_SESSION)
        deps.reset()
        return self

    def apply_environment(self, monkeypatch: Any) -> None:
        """The functions' environment, as the template gives it to them."""
        for key, value in self.resources.environment.items():
            monkeypatch.setenv(key, value)
        if self._stripe_base:
            monkeypatch.setenv("STRIPE_API_BASE", self._stripe_base)

    def __exit__(self, *exc: Any) -> None:
        try:
            self._stop_running_executions()
        finally:
            reproduce_ses_contact_lists(enforce_quotas=False)
            self.lambdas.uninstall(boto3.DEFAULT_SESSION)
            self._mock.stop()

    def _stop_running_executions(self, seconds: float = 5) -> None:
        """No execution may outlive moto's mock (it would call real endpoints)."""
        deadline = time.monotonic() + seconds
        while True:
            running = [
                e["executionArn"]
                for page in self.sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
                )
                for e in page["executions"]
            ]
            if not running:
                return
            for arn in running:
                try:
                    self.sfn.stop_execution(executionArn=arn)
                    # an execution parked on a task token only notices once woken
                    for event in self.history(arn):
                        if event["type"] == "TaskScheduled":
                            token = json.loads(event["taskScheduledEventDetails"]["parameters"])
                            self.sfn.send_task_failure(
                                taskToken=token["Payload"]["taskToken"], error="TestTeardown"
                            )
                except Exception:  # its worker may not have started yet, or just ended
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"executions would not stop: {running}")
            time.sleep(0.05)

    def _capture_events(self, events: Any) -> None:
        queue = self.sqs.create_queue(QueueName="captured-events")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        events.put_rule(
            Name="capture-all",
            EventBusName=self.event_bus,
            EventPattern=json.dumps({"source": ["tenant-onboarding"]}),
        )
        events.put_targets(
            Rule="capture-all",
            EventBusName=self.event_bus,
            Targets=[{"Id": "queue", "Arn": queue_arn}],
        )
        self._queue = queue
        self._events: List[Dict[str, Any]] = []

    # --- driving ---------------------------------------------------------------
    def start(self, tenant: Dict[str, str]) -> str:
        """Start onboarding the way the trigger does."""
        from chalicelib.tenants import NewTenant

        return deps.workflow().start(
            NewTenant(tenant["tenantId"], tenant["email"], tenant["name"])
        )

    def wait_for_token(self, execution_arn: str, seconds: float = 15) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event in self.history(execution_arn):
                if event["type"] == "TaskScheduled":
                    parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
                    return parameters["Payload"]["taskToken"]
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                raise AssertionError(f"execution ended ({status}) before waiting for a decision")
            time.sleep(0.05)
        raise AssertionError("the execution never reached Wait For Callback")

    def tenant_with_login(self, n: int) -> Dict[str, str]:
        """A tenant whose id is the sub of a real user of the stage's pool."""
        cognito = boto3.session.Session(region_name=REGION).client("cognito-idp")
        t = tenant(n)
        user = cognito.admin_create_user(
            UserPoolId=self.resources.ref("UserPool"), Username=t["email"],
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": t["email"]},
                            {"Name": "name", "Value": t["name"]}],
        )["User"]
        sub = {a["Name"]: a["Value"] for a in user["Attributes"]}["sub"]
        return {**t, "tenantId": sub}

    def login_enabled(self, tenant_id: str) -> bool:
        cognito = boto3.session.Session(region_name=REGION).client("cognito-idp")
        return cognito.admin_get_user(
            UserPoolId=self.resources.ref("UserPool"), Username=tenant_id)["Enabled"]

    def wait_for_status(self, tenant_id: str, status: str, seconds: float = 30) -> Dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            record = self.record(tenant_id) or {}
            if record.get("status") == status:
                return record
            time.sleep(0.05)
        raise AssertionError(f"tenant {tenant_id} never became {status}: {self.record(tenant_id)}")

    def kinds(self, tenant_id: str) -> List[str]:
        """The detail types of the tenant's events so far, in order."""
        return event_kinds(self.events(), tenant_id)

    def wait_for_event(self, tenant_id: str, detail_type: str, seconds: float = 30) -> List[str]:
        return wait_for_event(self.events, tenant_id, detail_type, seconds)

    def offboarding_ended(self, tenant_id: str, attempt: int = 1, seconds: float = 60) -> List[str]:
        """Once the offboarding run has ended: every event type the tenant got (so a
        count is final: nothing more will be published)."""
        from chalicelib.workflow import execution_arn, offboarding_name

        arn = execution_arn(self.resources.ref("OffboardingStateMachine"),
                            offboarding_name(tenant_id, attempt))
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                    break
            except self.sfn.exceptions.ExecutionDoesNotExist:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"offboarding run {arn} still running after {seconds}s")
            time.sleep(0.05)
        return self.kinds(tenant_id)

    def wait_until_asked(self, tenant_id: str, seconds: float = 30) -> Dict[str, Any]:
        """Until the wait task has kept its token and asked for approval; the record."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            record = self.record(tenant_id) or {}
            if (record.get("pendingDecision") or {}).get("requestNotifiedAt"):
                return record
            time.sleep(0.05)
        raise AssertionError(f"tenant {tenant_id} was never asked about")

    def wait_for_end(self, execution_arn: str, seconds: float = 30) -> Dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            description = self.sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return description
            time.sleep(0.05)
        raise AssertionError(f"execution still running after {seconds}s")

    def history(self, execution_arn: str) -> List[Dict[str, Any]]:
        events: List[Dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(
            executionArn=execution_arn
        ):
            events.extend(page["events"])
        return events

    def states_visited(self, execution_arn: str) -> List[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if event["type"].endswith("StateEntered")
        ]

    def record(self, tenant_id: str) -> Optional[Dict[str, Any]]:
        return deps.tenants().get(tenant_id)

    def events(self) -> List[Dict[str, Any]]:
        """Every event put on the bus so far, in order received."""
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self._queue, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return list(self._events)
            for message in messages:
                self._events.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"]
                )


def at_once(call: Callable[[], Any], times: int = 2) -> List[Any]:
    """What ``call`` returns, run ``times`` times at once in threads (races)."""
    results: List[Any] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def tenant(n: int = 1) -> Dict[str, str]:
    return {
        "tenantId": f"00000000-0000-4000-8000-{n:012d}",
        "email": f"tenant{n}@example.com",
        "name": f"Tenant {n} Ltd",
    }


def finalize_body(token: str, status: str, reason: Optional[str] = None) -> str:
    body: Dict[str, Any] = {"taskToken": token, "status": status}
    if reason is not None:
        body["reason"] = reason
    return json.dumps(body)


def event_kinds(events: List[Dict[str, Any]], tenant_id: str) -> List[str]:
    return [e["detail-type"] for e in events if e["detail"]["tenantId"] == tenant_id]


def wait_for_event(
    read_events: Callable[[], List[Dict[str, Any]]], tenant_id: str, detail_type: str,
    seconds: float,
) -> List[str]:
    """The tenant's event types so far, once ``detail_type`` is among them (a
    status is set a moment before its event goes out)."""
    deadline = time.monotonic() + seconds
    while True:
        kinds = event_kinds(read_events(), tenant_id)
        if detail_type in kinds:
            return kinds
        if time.monotonic() > deadline:
            raise AssertionError(f"no {detail_type!r} for {tenant_id} in {seconds}s: {kinds}")
        time.sleep(0.05)


def app_session() -> Any:
    """The session every client of the app is built from (a new client copies its hooks)."""
    if "session" not in deps._cache:
        deps.override("session", boto3.session.Session(region_name=REGION))
    return deps._cache["session"]


def app_client(service: str) -> Any:
    """The hooks of the app's own (cached) client of a service: register faults there."""
    app_session()
    return deps._client(service).meta
