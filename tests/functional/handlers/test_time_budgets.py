"""Time budgets (chalicelib/budget.py) against a service that hangs.

The endpoint is real: tests/support/faults.SilentEndpoint, on 127.0.0.1, accepts
every connection and never answers, so the sockets and their timeouts are real.
Each test points the app's clients of one service at it (boto3's
``AWS_ENDPOINT_URL_<SERVICE>``, or Stripe's API base) and gives its function a
short Lambda context (3 s, of which budget.MARGIN_SECONDS are kept to answer),
or its real timeout where that is short already (the Cognito trigger's 5 s),
and asserts what the caller gets and how long it took: a route answers 503
with Retry-After, a task raises the transient error its state machine
retries, the reconciler ends its sweep, each before the function's time is up.

Every AWS service a function calls is hung at least once:

- the routes: DynamoDB (an admin listing, a tenant adding a subscriber), Step
  Functions (an admin's decision);
- the tasks: DynamoDB (Create Tenant Record, Finish Offboarding), SES (Create
  Contact List making the SES tenant), EventBridge (Await Decision, Update
  Status & Notify), Secrets Manager and Stripe (Create Stripe Customer reading
  its key, then calling Stripe), Cognito (Release Tenant Resources disabling
  the login);
- the Cognito trigger: Step Functions;
- the reconciler: DynamoDB (its sweep fails, as Lambda reports an error) and
  Step Functions (the tenant it cannot check is logged and counted, and the
  sweep ends with its metrics);
- the outcome mail: SES, whose one attempt leaves the outcome's event its time.

The elapsed bound is the contract itself, the function's timeout: the budget
plus the margin kept to answer. The answer normally comes a connect timeout
before the budget ends (an attempt's read is cut to what is left less the
connect), so the bound holds a second and more to spare on a loaded machine.
Without the budget, one call to the silent DynamoDB alone takes 3 × 5 s of
reads plus backoff. The short-context functions find their container warm
(their clients built by an earlier invocation as long), as most invocations
do: a cold one would spend part of its budget building them. Where other
calls must succeed first (the record a task reads), the stage runs in moto
(tests/support/stage.py) and only the hung service is silent.
"""
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import budget
from chalicelib import dependencies as deps
from chalicelib.budget import MARGIN_SECONDS
from chalicelib.clock import utc_now
from chalicelib.events import OUTCOMES
from chalicelib.tenants import NewTenant
from scripts.local.lambdas import (
    API_FUNCTION,
    LocalContext,
    LocalLambdas,
    run_each_function_within_its_own,
    scheduled_event,
)
from scripts.shared import PROJECT_DIR
from tests.support import load_event, unsigned_id_token
from tests.support.faults import SilentEndpoint
from tests.support.stage import STAGE, Stage

SHORT_TIMEOUT_SECONDS = 3
CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
DEFINITIONS = {name: json.loads((PROJECT_DIR / name).read_text())
               for name in ("statemachine.json", "offboarding.json")}
TASK = load_event("task_tenant.json")
TENANT = NewTenant(TASK["tenant"]["tenantId"], TASK["tenant"]["email"], TASK["tenant"]["name"])
APPROVED = {**TASK, "outcome": {"status": "active", "decision": {
    "status": "approved", "decidedAt": "2026-12-03T12:00:00.000Z", "decidedBy": "admin@example.com"}}}
STRIPE = "stripe"  # not an AWS service: the stage points Stripe's API base at the endpoint


@pytest.fixture
def silent():
    with SilentEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def stage_variables(monkeypatch):
    """What settings.py requires, without a stage: no call gets past the endpoint."""
    monkeypatch.setenv("TENANT_TABLE_NAME", "tenant-onboarding-local-tenants")
    monkeypatch.setenv("EVENT_BUS_NAME", "tenant-onboarding-local-events")
    monkeypatch.setenv("STATE_MACHINE_ARN",
                       "arn:aws:states:us-east-1:123456789012:stateMachine:onboarding")


@contextmanager
def hung(service: str, endpoint: SilentEndpoint, read_seconds: float | None = None) -> Iterator[str]:
    """The app's clients of ``service`` (botocore's name) built inside go to
    ``endpoint``; yields the name the app's errors and 503s give the service.
    Only those: the test's own clients, and those tests/support/iam.py looks
    resources up with, built later, still reach the stage. ``read_seconds``:
    every client built inside reads that long at most (AWS_CLIENT_TIMEOUT_SECONDS)."""
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        if read_seconds is not None:
            patch.setenv("AWS_CLIENT_TIMEOUT_SECONDS", str(read_seconds))
        if service == STRIPE:
            yield "Stripe"
            return
        service_id = botocore.session.get_session().get_service_model(service).service_id
        patch.setenv(f"AWS_ENDPOINT_URL_{service_id.replace(' ', '_').upper()}", endpoint.url)
        yield deps.SERVICE_NAMES[service]


def short_api_client(project_dir: Path) -> Client:
    """chalice.test's Client, whose Lambda context (chalice.local.LambdaContext)
    has the API function's timeout from the project's config: here cut to 3 s.
    Its routes run within the API function's cache, as the local stack's do."""
    config = json.loads(json.dumps(CONFIG))
    config["lambda_functions"][API_FUNCTION]["lambda_timeout"] = SHORT_TIMEOUT_SECONDS
    (project_dir / ".chalice").mkdir()
    (project_dir / ".chalice" / "config.json").write_text(json.dumps(config))
    import app

    run_each_function_within_its_own(app.app)
    return Client(app.app, stage_name=STAGE, project_dir=str(project_dir))


def warm(function: str, seconds: float, *builds: Callable[[], Any]) -> None:
    """``function``'s container after invocations of ``seconds``, one a build:
    what ``builds`` build is cached, sized for that budget."""
    for build in builds:
        with deps.within(function), budget.invocation(LocalContext(function, "", int(seconds * 1000))):
            build()


def invoke(function: str, event: dict[str, Any], timeout_seconds: float,
           stage: Stage | None = None) -> tuple[str | None, Any, float]:
    """``function`` run as Lambda would (the local stack's runtime), with a context
    of ``timeout_seconds``: its FunctionError (None, or "Unhandled" for an
    exception), its payload, and how long it took."""
    import app

    names = stage.resources.function_names if stage else {name: name for name in CONFIG["lambda_functions"]}
    runtime = LocalLambdas(app.app, names, timeout_ms=int(timeout_seconds * 1000))
    started = time.monotonic()
    error, payload = runtime.invoke(names[function], json.dumps(event).encode())
    return error, json.loads(payload), time.monotonic() - started


def transient_errors(definition: str, state: str) -> list[str]:
    """The error names the state's transient Retry policy (MaxDelaySeconds) retries."""
    [retrier] = [r for r in DEFINITIONS[definition]["States"][state]["Retry"]
                 if "MaxDelaySeconds" in r]
    return list(retrier["ErrorEquals"])


def assert_in_time(elapsed: float, timeout: float) -> None:
    """Answered before the function's ``timeout``: its budget, plus the margin kept to answer."""
    assert elapsed < timeout, (
        f"answered after {elapsed:.2f} s; the budget was {timeout - MARGIN_SECONDS:.1f} s, "
        f"the function's timeout {timeout} s")


# --- the routes: 503 with Retry-After, before the API's timeout -----------------------------
ADMIN: dict[str, str] = {}  # chalice.test reads no token on the admin routes
JSON = {"Content-Type": "application/json"}
SIGNED_IN_TENANT = {**JSON, "Authorization": unsigned_id_token(TENANT.tenant_id, TENANT.email)}


@pytest.mark.parametrize("service, method, path, headers, body, builds", [
    pytest.param("dynamodb", "GET", "/tenants?status=onboarding", ADMIN, None,
                 (deps.tenants, deps.workflow), id="admin-listing-dynamodb"),
    pytest.param("dynamodb", "POST", "/me/subscribers", SIGNED_IN_TENANT,
                 json.dumps({"email": "grace@example.com", "name": "Grace"}),
                 (deps.my_subscribers,), id="tenant-adds-subscriber-dynamodb"),
    pytest.param("stepfunctions", "POST", "/tenant/finalize", JSON,
                 json.dumps({"taskToken": "t" * 64, "status": "approved"}),
                 (deps.workflow,), id="admin-decision-step-functions"),
])
def test_given_a_service_hangs_when_a_route_is_called_then_503_with_retry_after_in_time(
    tmp_path, silent, stage_variables, service, method, path, headers, body, builds,
):
    client = short_api_client(tmp_path)
    with hung(service, silent) as name:
        warm(API_FUNCTION, SHORT_TIMEOUT_SECONDS, *builds)

    started = time.monotonic()
    response = getattr(client.http, method.lower())(
        path, headers=headers, **({"body": body} if body is not None else {}))
    elapsed = time.monotonic() - started

    assert response.status_code == 503, response.body
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "Code": "ServiceUnavailableError",
        "Message": f"{name} is unavailable right now; try again in 5 seconds"}
    assert silent.connections  # it did wait on the silent service
    assert_in_time(elapsed, SHORT_TIMEOUT_SECONDS)


# --- the tasks: their transient error, by name, before their timeout -------------------------
@dataclass(frozen=True)
class HungTask:
    """A task whose ``service`` hangs once the tenant's record is written (in moto)."""

    function: str
    service: str  # botocore's name, or STRIPE
    builds: tuple[Callable[[], Any], ...]  # what a warm container of it has built
    retried_by: tuple[tuple[str, str], ...]  # (definition, state): its transient Retry
    event: dict[str, Any] = field(default_factory=lambda: TASK)
    error: str = "AwsServiceUnavailable"


def read_stripe_key() -> Any:
    import stripe  # noqa: F401 - loaded, as in a warm container

    return deps.billing().stripe_client()


HUNG_TASKS = [
    HungTask("create_tenant_record", "dynamodb", (deps.tenants, deps.settings),
             (("statemachine.json", "Create Tenant Record"),)),
    HungTask("create_contact_list", "sesv2", (deps.tenants, deps.contact_lists),
             (("statemachine.json", "Create Contact List"),)),
    HungTask("create_stripe_customer", "secretsmanager", (deps.tenants, deps.billing),
             (("statemachine.json", "Create Stripe Customer"),)),
    # a container that has read the key already: Stripe itself hangs
    HungTask("create_stripe_customer", STRIPE, (deps.tenants, deps.billing, read_stripe_key),
             (("statemachine.json", "Create Stripe Customer"),), error="StripeUnavailable"),
    HungTask("await_decision", "events", (deps.tenants, deps.publisher),
             (("statemachine.json", "Wait For Callback"),),
             {**TASK, "taskToken": "t" * 64, "approvalWindowSeconds": 3600,
              "waitStartedAt": "2026-12-03T12:00:00.000Z"}),
    HungTask("update_status_and_notify", "events", (deps.outcomes,),
             (("statemachine.json", "Update Status & Notify"),), APPROVED),
    HungTask("release_tenant_resources", "cognito-idp", (deps.tenants, deps.releases),
             (("statemachine.json", "Release Rejected Tenant"), ("offboarding.json", "Disable Login")),
             {**TASK, "release": ["user"]}),
    HungTask("finish_offboarding", "dynamodb", (deps.offboardings,),
             (("offboarding.json", "Finish Offboarding"),),
             {**TASK, "outcome": {"status": "offboarded"}}),
]


@pytest.mark.parametrize("task", HUNG_TASKS, ids=lambda task: f"{task.function}-{task.service}")
def test_given_a_service_hangs_when_a_task_runs_then_it_raises_the_retried_error_in_time(
    monkeypatch, silent, task
):
    # Stripe on (its key in Secrets Manager, its API the silent endpoint): only
    # the customer task calls either
    with Stage(monkeypatch, stripe_api_base=silent.url) as stage:
        deps.tenants().create(TENANT, utc_now())  # the rest of AWS answers
        with hung(task.service, silent) as name:
            warm(task.function, SHORT_TIMEOUT_SECONDS, *task.builds)

        error, reported, elapsed = invoke(task.function, task.event, SHORT_TIMEOUT_SECONDS, stage)

        assert error == "Unhandled"  # as Lambda reports an exception to Step Functions
        assert reported["errorType"] == task.error, reported
        assert reported["errorMessage"].startswith(f"{name} is unavailable"), reported
        for definition, state in task.retried_by:
            assert reported["errorType"] in transient_errors(definition, state), state
        assert silent.connections, reported  # it did wait on the silent service
        assert_in_time(elapsed, SHORT_TIMEOUT_SECONDS)


def test_given_step_functions_hangs_when_a_sign_up_is_confirmed_then_the_trigger_fails_within_5_s(
    silent, stage_variables
):
    # the trigger's real timeout, and a cold container: Cognito gives it 5 s in all
    timeout = CONFIG["lambda_functions"]["post_confirmation"]["lambda_timeout"]
    with hung("stepfunctions", silent):
        error, reported, elapsed = invoke("post_confirmation", load_event("post_confirmation.json"),
                                          timeout)

    assert error == "Unhandled"
    assert reported["errorType"] == "AwsServiceUnavailable"
    assert silent.connections
    # Cognito's 5 s include Lambda's own overhead: half the margin is kept for it
    assert_in_time(elapsed, timeout - MARGIN_SECONDS / 2)


# --- the reconciler: its sweep ends within its budget ---------------------------------------
# the reconciler's listings: stuck onboardings, each outcome due, offboardings, releases due
LISTINGS = 1 + len(OUTCOMES) + 2


def test_given_dynamodb_hangs_when_the_reconciler_runs_then_it_fails_in_time(
    monkeypatch, silent, capsys
):
    # Its listing of the tenants fails: Lambda reports the error (the function's
    # Errors alarm, scripts/deploy/alarms.py), its metrics line still counts it
    # (SweepErrors), and the next sweep tries again.
    with Stage(monkeypatch) as stage:
        with hung("dynamodb", silent):
            warm("reconcile", SHORT_TIMEOUT_SECONDS, deps.reconciler)
        capsys.readouterr()

        error, reported, elapsed = invoke("reconcile", scheduled_event(), SHORT_TIMEOUT_SECONDS, stage)

        assert error == "Unhandled"
        assert reported["errorType"] == "AwsServiceUnavailable"
        [metrics] = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                     if line.startswith('{"_aws"')]
        # every listing failed, each counted: the first spent the budget, the rest were refused
        assert metrics["SweepErrors"] == LISTINGS, metrics
        assert silent.connections
        assert_in_time(elapsed, SHORT_TIMEOUT_SECONDS)


RECONCILE_TIMEOUT_SECONDS = 6  # room for the other listings after two 0.5 s reads, on a busy machine


def test_given_step_functions_hangs_when_the_reconciler_meets_a_stuck_tenant_then_it_counts_it_in_time(
    monkeypatch, silent, capsys, caplog
):
    # A tenant old enough to check, whose run the reconciler cannot ask about:
    # it is logged and counted (SweepErrors, alarmed), the sweep goes on over
    # the other indexes, and ends with its metrics line. Reads are cut to 0.5 s,
    # so the two attempts at the silent Step Functions leave time for the rest,
    # as its 1.5 s reads leave most of the reconciler's real 300 s.
    with Stage(monkeypatch) as stage:
        deps.tenants().create(TENANT, "2020-01-01T00:00:00.000Z")
        with hung("stepfunctions", silent, read_seconds=0.5):
            warm("reconcile", RECONCILE_TIMEOUT_SECONDS, deps.reconciler)
        capsys.readouterr()

        error, counts, elapsed = invoke("reconcile", scheduled_event(), RECONCILE_TIMEOUT_SECONDS, stage)

        assert error is None, counts
        assert counts == {"onboarding": 1, "errors": 1}
        [metrics] = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                     if line.startswith('{"_aws"')]
        assert metrics["SweepErrors"] == 1, metrics
        assert [record.tenantId for record in caplog.records
                if record.getMessage().startswith("could not reconcile")] == [TENANT.tenant_id]
        assert stage.record(TENANT.tenant_id)["status"] == "onboarding"  # for the next sweep
        assert silent.connections
        assert_in_time(elapsed, RECONCILE_TIMEOUT_SECONDS)


# --- the outcome mail: SES hanging does not hold up the outcome's event -----------------------
MAIL_TIMEOUT_SECONDS = 5


def test_given_ses_hangs_when_the_outcome_is_told_then_its_event_still_goes_out_in_time(
    monkeypatch, silent
):
    # SendEmail is one attempt (dependencies.SEND_MAIL): its read, cut to 1 s here
    # as its 5 s are to the task's 30, times out; SES may have had the message,
    # so the mail is recorded as unknown and never sent again, and the event goes out.
    with Stage(monkeypatch) as stage:  # the local stage has an SES sender
        deps.tenants().create(TENANT, utc_now())
        with hung("sesv2", silent, read_seconds=1):
            warm("update_status_and_notify", MAIL_TIMEOUT_SECONDS, deps.outcomes)

        error, told, elapsed = invoke("update_status_and_notify", APPROVED, MAIL_TIMEOUT_SECONDS, stage)

        assert error is None, told
        assert told == {"status": "active", "published": True}
        assert stage.record(TENANT.tenant_id)["outcomeMail"]["state"] == "unknown"
        assert stage.kinds(TENANT.tenant_id) == ["Tenant Onboarding Complete"]
        assert silent.connections
        assert_in_time(elapsed, MAIL_TIMEOUT_SECONDS)
