"""A stage of the app inside moto, in process: the functional tier.

The real statemachine.json runs in moto's Step Functions engine; its Lambda
tasks run the app's own handlers (scripts/local/lambdas.py, the same runtime
the local stack uses); events on the bus land in an SQS queue the test reads.
Every AWS call a function makes is checked against that function's own role
in template.json (tests/support/iam.py): a call the role would deny fails
the test when its stage ends, as an event off the catalogue's contract does.

Provisioning the template takes a second or more, so a test module's tests
share one provisioned stage, a ``StageWorld``: ``Stage(monkeypatch, ...)``
configures it for one test (the settings it takes change the functions'
environment and the state machines' waits, not the resources) and, when the
test ends, resets it: running executions stopped and waited for, the state
machines made again (which forgets their executions), the table, the user
pools, SES (its lists and tenants) and the captured events emptied. tests/functional/conftest.py
closes the world when its module ends, so no mock outlives a module.
"""
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, Optional

import boto3
from moto import mock_aws

from chalicelib import dependencies as deps
from scripts.deploy.template import Resolver, load_template
from scripts.local.aws import behave_like_aws
from scripts.local.lambdas import LocalLambdas
from scripts.local.resources import provision_stage, replace_state_machines, stage_parameters
from scripts.local.ses import reproduce_ses_contact_lists
from scripts.shared import LOCAL_ACCOUNT as ACCOUNT
from scripts.shared import LOCAL_REGION as REGION
from scripts.shared import eventually, stripe_secret_name
from tests.support import iam

STAGE = "local"  # .chalice/config.json's stage for chalice.test.Client
DEFAULT_CONTACT_LIST_MODE = "subscriber-store"
STATE_MACHINES = ("StateMachine", "OffboardingStateMachine")


class StageWorld:
    """One moto mock holding one provisioned stage, reused test after test."""

    _current: Optional["StageWorld"] = None

    @classmethod
    def current(cls) -> "StageWorld":
        if cls._current is None:
            cls._current = cls()
        return cls._current

    @classmethod
    def close(cls) -> None:
        """The end of a module: the mock stops and its data goes."""
        world, cls._current = cls._current, None
        if world is not None:
            world._stop()

    def __init__(self) -> None:
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        behave_like_aws(enforce_ses_quotas=False)
        self.session = boto3.session.Session(region_name=REGION)
        self.ddb = self.session.client("dynamodb")
        self.sfn = self.session.client("stepfunctions")
        self.sqs = self.session.client("sqs")
        self.sesv2 = self.session.client("sesv2")
        self.cognito = self.session.client("cognito-idp")
        self.secrets = self.session.client("secretsmanager")
        self.resources = provision_stage(self.session, STAGE, ACCOUNT)
        self._queue = self._capture_events(self.session.client("events"))
        self.events: list[dict[str, Any]] = []
        # every event seen that the catalogue (chalicelib/events.py) does not describe
        self.off_contract: list[str] = []

        import app

        self.app = app.app
        self.lambdas = LocalLambdas(app.app, self.resources.function_names)
        boto3.setup_default_session(region_name=REGION)
        self.lambdas.install(boto3.DEFAULT_SESSION)
        # the roles the calls are checked against: template.json's, unless a
        # test hands its stage another (the negative controls)
        self.default_iam_template = self.iam_template = load_template()
        self._policies: dict[tuple[str, bool], Mapping[str, iam.Policy]] = {}
        self._policies_lock = threading.Lock()
        self.iam_check = iam.CallRecorder(self.iam_policies, iam.CallDescriber(
            iam.AwsLookups(self.session), REGION, ACCOUNT))
        iam.install(self.iam_check)

    def _stop(self) -> None:
        try:
            self.reset()
        finally:
            iam.uninstall(self.iam_check)
            reproduce_ses_contact_lists(enforce_quotas=False)
            self.lambdas.uninstall(boto3.DEFAULT_SESSION)
            self._mock.stop()

    def iam_policies(self) -> Mapping[str, iam.Policy]:
        """Each function's role as the stage is deployed now: the template resolved
        for the parameters its functions' environment comes from (a test may
        change the mode mid-way, as a redeploy would)."""
        mode, stripe = iam.deployed_parameters(DEFAULT_CONTACT_LIST_MODE)
        with self._policies_lock:
            if (mode, stripe) not in self._policies:
                resolver = Resolver(self.iam_template, stage_parameters(STAGE, mode, stripe),
                                    REGION, ACCOUNT, self.resources.physical)
                self._policies[mode, stripe] = iam.function_policies(self.iam_template, resolver)
            return self._policies[mode, stripe]

    def check_calls_against(self, template: dict[str, Any]) -> None:
        """The template whose roles the functions' calls are checked against."""
        with self._policies_lock:
            if template is not self.iam_template:
                self.iam_template, self._policies = template, {}

    def _capture_events(self, events: Any) -> str:
        queue = self.sqs.create_queue(QueueName="captured-events")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        bus = self.resources.ref("EventBus")
        events.put_rule(Name="capture-all", EventBusName=bus,
                        EventPattern=json.dumps({"source": ["tenant-onboarding"]}))
        events.put_targets(Rule="capture-all", EventBusName=bus,
                           Targets=[{"Id": "queue", "Arn": queue_arn}])
        return queue

    # --- one test's configuration ----------------------------------------------
    def configure(
        self,
        approval_timeout_seconds: int | None,
        retry_interval_seconds: int | None,
        stripe_api_key: str | None,
        enforce_ses_quotas: bool,
    ) -> None:
        """The state machines with this test's waits; the Stripe secret it reads."""
        replace_state_machines(self.session, self.resources, approval_timeout_seconds,
                               retry_interval_seconds)
        reproduce_ses_contact_lists(enforce_quotas=enforce_ses_quotas)
        if stripe_api_key is not None:
            self.secrets.create_secret(Name=stripe_secret_name(STAGE), SecretString=stripe_api_key)

    # --- between tests ---------------------------------------------------------
    def reset(self) -> None:
        """Back to a stage nothing has happened on."""
        self.stop_running_executions()
        self.lambdas.invocations.clear()
        self._empty_table()
        self._delete_users()
        self._delete_contact_lists()
        self._delete_secrets()
        self._drain_events()
        self.events.clear()
        reproduce_ses_contact_lists(enforce_quotas=False)

    def stop_running_executions(self, seconds: float = 10) -> None:
        """No execution may outlive its test: each is stopped (a task waiting for
        its token is woken), then the Lambda invocations under way are waited for,
        so nothing writes into the next test's stage."""
        def stopped() -> bool:
            running = [execution["executionArn"]
                       for logical_id in STATE_MACHINES
                       for page in self.sfn.get_paginator("list_executions").paginate(
                           stateMachineArn=self.resources.ref(logical_id), statusFilter="RUNNING")
                       for execution in page["executions"]]
            for arn in running:
                self._stop_execution(arn)
            return not running

        eventually(stopped, seconds, "executions would not stop")
        if not self.lambdas.wait_until_idle(seconds):
            raise AssertionError(f"a Lambda invocation still ran {seconds}s after its test")

    def _stop_execution(self, arn: str) -> None:
        try:
            self.sfn.stop_execution(executionArn=arn)
            # an execution parked on a task token only notices once woken
            for event in history(self.sfn, arn):
                if event["type"] == "TaskScheduled":
                    token = json.loads(event["taskScheduledEventDetails"]["parameters"])
                    self.sfn.send_task_failure(
                        taskToken=token["Payload"]["taskToken"], error="TestTeardown")
        except Exception:  # its worker may not have started yet, or just ended
            pass

    def _empty_table(self) -> None:
        table = self.resources.ref("TenantTable")
        for page in self.ddb.get_paginator("scan").paginate(
                TableName=table, ProjectionExpression="pk, sk"):
            for key in page["Items"]:
                self.ddb.delete_item(TableName=table, Key=key)

    def _delete_users(self) -> None:
        for pool in ("UserPool", "AdminUserPool"):
            pool_id = self.resources.ref(pool)
            for page in self.cognito.get_paginator("list_users").paginate(UserPoolId=pool_id):
                for user in page["Users"]:
                    self.cognito.admin_delete_user(UserPoolId=pool_id, Username=user["Username"])

    def _delete_contact_lists(self) -> None:
        """SES's lists and tenants."""
        for contact_list in self.sesv2.list_contact_lists().get("ContactLists", []):
            self.sesv2.delete_contact_list(ContactListName=contact_list["ContactListName"])
        for ses_tenant in self.sesv2.list_tenants().get("Tenants", []):
            self.sesv2.delete_tenant(TenantName=ses_tenant["TenantName"])

    def _delete_secrets(self) -> None:
        for secret in self.secrets.list_secrets().get("SecretList", []):
            self.secrets.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)

    def _drain_events(self) -> None:
        while self._receive():
            pass

    def _receive(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self._queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
        received = [json.loads(message["Body"]) for message in messages]
        for event in received:
            self.off_contract += contract_violations(event)
        return received

    def read_events(self) -> list[dict[str, Any]]:
        """Every event put on the bus since the test began, in order received."""
        while True:
            received = self._receive()
            if not received:
                return list(self.events)
            self.events.extend(received)


class Stage:
    """One test's stage: ``with Stage(monkeypatch, ...) as stage``."""

    def __init__(
        self,
        monkeypatch: Any,
        approval_timeout_seconds: int | None = None,
        stripe_api_base: str | None = None,
        stripe_api_key: str = "sk_test_local",
        contact_list_mode: str = DEFAULT_CONTACT_LIST_MODE,
        enforce_ses_quotas: bool = False,
        retry_interval_seconds: int | None = 1,
        iam_template: dict[str, Any] | None = None,
    ) -> None:
        """``iam_template``: check the functions' calls against this template's
        roles instead of template.json's."""
        self._monkeypatch = monkeypatch
        self._iam_template = iam_template
        self._approval_timeout = approval_timeout_seconds
        self._retry_interval = retry_interval_seconds
        self._stripe_base = stripe_api_base
        self._stripe_key = stripe_api_key
        self._contact_list_mode = contact_list_mode
        self._enforce_ses_quotas = enforce_ses_quotas

    # --- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Stage":
        self.world = world = StageWorld.current()
        world.configure(self._approval_timeout, self._retry_interval,
                        self._stripe_key if self._stripe_base else None,
                        self._enforce_ses_quotas)
        self.resources = world.resources
        self.environment = self.resources.environment_for(
            self._contact_list_mode, stripe=bool(self._stripe_base))
        self.apply_environment(self._monkeypatch)
        self.ddb, self.sfn, self.sqs, self.sesv2 = world.ddb, world.sfn, world.sqs, world.sesv2
        self.app, self.lambdas = world.app, world.lambdas
        self.state_machine_arn = self.resources.ref("StateMachine")
        self.table_name = self.resources.ref("TenantTable")
        self.event_bus = self.resources.ref("EventBus")
        self.shared_contact_list = self.environment["SHARED_CONTACT_LIST_NAME"]
        deps.reset()
        app_session()  # one session for every function: faults registered on it reach all
        world.iam_check.take()
        world.check_calls_against(self._iam_template or world.default_iam_template)
        # the calls the stage's functions made, as checked (set on exit)
        self.iam_calls = iam.Recording()
        return self

    def apply_environment(self, monkeypatch: Any) -> None:
        """The functions' environment, as the template gives it to them."""
        for key, value in self.environment.items():
            monkeypatch.setenv(key, value)
        if self._stripe_base:
            monkeypatch.setenv("STRIPE_API_BASE", self._stripe_base)

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        world = self.world
        world.reset()
        deps.reset()
        violations, world.off_contract = world.off_contract, []
        self.iam_calls = world.iam_check.take()
        world.check_calls_against(world.default_iam_template)
        if self.iam_calls.problems:
            report = ("AWS calls their function's own role would not allow, or that could not "
                      "be checked (template.json; docs/tests.md#iam):\n  "
                      + "\n  ".join(self.iam_calls.problems))
            if exc is not None:  # the test failed already: say this too
                exc.add_note(report)
            else:
                raise AssertionError(report)
        assert not violations, f"events off the catalogue's contract: {violations}"

    # --- driving ---------------------------------------------------------------
    def start(self, tenant: dict[str, str]) -> str:
        """Start onboarding the way the trigger does (as the trigger: its role)."""
        from chalicelib.tenants import NewTenant

        with deps.within("post_confirmation"):
            return deps.workflow().start(
                NewTenant(tenant["tenantId"], tenant["email"], tenant["name"])
            )

    def wait_for_token(self, execution_arn: str, seconds: float = 15) -> str:
        def token() -> str | None:
            for event in self.history(execution_arn):
                if event["type"] == "TaskScheduled":
                    parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
                    return str(parameters["Payload"]["taskToken"])
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                raise AssertionError(f"execution ended ({status}) before waiting for a decision")
            return None

        return eventually(token, seconds, "the execution never reached Wait For Callback")

    def tenant_with_login(self, n: int) -> dict[str, str]:
        """A tenant whose id is the sub of a real user of the stage's pool."""
        t = tenant(n)
        user = self.world.cognito.admin_create_user(
            UserPoolId=self.resources.ref("UserPool"), Username=t["email"],
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": t["email"]},
                            {"Name": "name", "Value": t["name"]}],
        )["User"]
        sub = {a["Name"]: a["Value"] for a in user["Attributes"]}["sub"]
        return {**t, "tenantId": sub}

    def login_enabled(self, tenant_id: str) -> bool:
        return bool(self.world.cognito.admin_get_user(
            UserPoolId=self.resources.ref("UserPool"), Username=tenant_id)["Enabled"])

    def wait_for_status(self, tenant_id: str, status: str, seconds: float = 30) -> dict[str, Any]:
        def in_status() -> dict[str, Any] | None:
            record = self.record(tenant_id) or {}
            return record if record.get("status") == status else None

        return eventually(in_status, seconds,
                          lambda: f"tenant {tenant_id} never became {status}: {self.record(tenant_id)}")

    def kinds(self, tenant_id: str) -> list[str]:
        """The detail types of the tenant's events so far, in order."""
        return event_kinds(self.events(), tenant_id)

    def wait_for_event(self, tenant_id: str, detail_type: str, seconds: float = 30) -> list[str]:
        return wait_for_event(self.events, tenant_id, detail_type, seconds)

    def offboarding_ended(self, tenant_id: str, attempt: int = 1, seconds: float = 60) -> list[str]:
        """Once the offboarding run has ended: every event type the tenant got (so a
        count is final: nothing more will be published)."""
        from chalicelib.workflow import execution_arn, offboarding_name

        arn = execution_arn(self.resources.ref("OffboardingStateMachine"),
                            offboarding_name(tenant_id, attempt))

        def ended() -> bool:
            try:
                return bool(self.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING")
            except self.sfn.exceptions.ExecutionDoesNotExist:
                return False

        eventually(ended, seconds, f"offboarding run {arn} still running")
        return self.kinds(tenant_id)

    def wait_until_asked(self, tenant_id: str, seconds: float = 30) -> dict[str, Any]:
        """Until the wait task has kept its token and asked for approval; the record."""
        def asked() -> dict[str, Any] | None:
            record = self.record(tenant_id) or {}
            return record if (record.get("pendingDecision") or {}).get("requestNotifiedAt") else None

        return eventually(asked, seconds, f"tenant {tenant_id} was never asked about")

    def wait_for_end(self, execution_arn: str, seconds: float = 30) -> dict[str, Any]:
        def ended() -> dict[str, Any] | None:
            description = dict(self.sfn.describe_execution(executionArn=execution_arn))
            return description if description["status"] != "RUNNING" else None

        return eventually(ended, seconds, f"execution {execution_arn} still running")

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return history(self.sfn, execution_arn)

    def states_visited(self, execution_arn: str) -> list[str]:
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.history(execution_arn)
            if event["type"].endswith("StateEntered")
        ]

    def record(self, tenant_id: str) -> dict[str, Any] | None:
        return deps.tenants().get(tenant_id)

    def events(self) -> list[dict[str, Any]]:
        """Every event put on the bus so far, in order received."""
        return self.world.read_events()


def contract_violations(event: dict[str, Any]) -> list[str]:
    """What is wrong with a published event by the catalogue (chalicelib/events.py)."""
    import jsonschema

    from chalicelib.events import CATALOGUE, DEFAULT_SOURCE

    declared = CATALOGUE.get(event.get("detail-type", ""))
    if declared is None:
        return [f"{event.get('detail-type')!r} is not in the catalogue"]
    problems = [] if event.get("source") == DEFAULT_SOURCE else [f"source {event.get('source')!r}"]
    validator = jsonschema.Draft202012Validator(declared.schema())
    problems += [f"{declared}: {error.message}" for error in validator.iter_errors(event["detail"])]
    return problems


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def at_once(call: Callable[[], Any], times: int = 2) -> list[Any]:
    """What ``call`` returns, run ``times`` times at once in threads (races)."""
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def tenant(n: int = 1) -> dict[str, str]:
    return {
        "tenantId": f"00000000-0000-4000-8000-{n:012d}",
        "email": f"tenant{n}@example.com",
        "name": f"Tenant {n} Ltd",
    }


def finalize_body(token: str, status: str, reason: str | None = None) -> str:
    body: dict[str, Any] = {"taskToken": token, "status": status}
    if reason is not None:
        body["reason"] = reason
    return json.dumps(body)


def event_kinds(events: list[dict[str, Any]], tenant_id: str) -> list[str]:
    return [e["detail-type"] for e in events if e["detail"]["tenantId"] == tenant_id]


def wait_for_event(
    read_events: Callable[[], list[dict[str, Any]]], tenant_id: str, detail_type: str,
    seconds: float,
) -> list[str]:
    """The tenant's event types so far, once ``detail_type`` is among them (a
    status is set a moment before its event goes out)."""
    def published() -> list[str] | None:
        kinds = event_kinds(read_events(), tenant_id)
        return kinds if detail_type in kinds else None

    return eventually(published, seconds, lambda: (
        f"no {detail_type!r} for {tenant_id}: {event_kinds(read_events(), tenant_id)}"))


def app_session() -> Any:
    """The session every client of the app is built from (a new client copies its hooks)."""
    for session in deps.built("session"):  # the override comes first
        return session
    session = boto3.session.Session(region_name=REGION)
    deps.override("session", session)
    return session


class _EveryClient:
    """Hooks registered here reach every function's client of one service:
    those built already, and (through the session) those built later."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.events = self

    def register(self, event: str, handler: Any) -> None:
        app_session().events.register(event, handler)
        for client in deps.built(f"client:{self.service}"):
            client.meta.events.register(event, handler)


def app_client(service: str) -> Any:
    """The hooks of the app's clients of a service, in every function: register faults there."""
    return _EveryClient(service)
