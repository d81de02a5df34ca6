"""Time budgets (chalicelib/budget.py) against a service that hangs.

The endpoint is real: tests/support/faults.SilentEndpoint, on 127.0.0.1, accepts
every connection and never answers, so the sockets and their timeouts are real.
Each test gives its function a short Lambda context (3 s, of which
budget.MARGIN_SECONDS are kept to answer), or its real timeout where that is
short already (the Cognito trigger's 5 s), and asserts what the caller gets
and how long it took: a route answers 503 with Retry-After, a task raises the
transient error statemachine.json retries, before the function's time is up.
Without the budget, one call to the silent DynamoDB alone takes 3 × 5 s of
reads plus backoff. The short-context functions find their container warm
(their clients built by an earlier invocation as long), as most invocations
do: a cold one would spend part of its budget building them.
"""
import json
import time
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import budget
from chalicelib import dependencies as deps
from chalicelib.budget import MARGIN_SECONDS
from scripts.local.lambdas import LocalContext, LocalLambdas
from scripts.shared import PROJECT_DIR
from tests.support import load_event
from tests.support.faults import SilentEndpoint
from tests.support.stage import STAGE, Stage

SHORT_TIMEOUT_SECONDS = 3
CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
DEFINITION = json.loads((PROJECT_DIR / "statemachine.json").read_text())


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


def short_api_client(project_dir: Path) -> Client:
    """chalice.test's Client, whose Lambda context (chalice.local.LambdaContext)
    has the API function's timeout from the project's config: here cut to 3 s."""
    config = json.loads(json.dumps(CONFIG))
    config["lambda_functions"]["api_handler"]["lambda_timeout"] = SHORT_TIMEOUT_SECONDS
    (project_dir / ".chalice").mkdir()
    (project_dir / ".chalice" / "config.json").write_text(json.dumps(config))
    import app

    return Client(app.app, stage_name=STAGE, project_dir=str(project_dir))


def lambdas(timeout_seconds: float) -> LocalLambdas:
    """The app's functions run as Lambda would (the local stack's runtime), each
    invocation with a context of ``timeout_seconds``."""
    import app

    names = {name: name for name in CONFIG["lambda_functions"]}
    return LocalLambdas(app.app, names, timeout_ms=int(timeout_seconds * 1000))


def warm(function: str, seconds: float, *builds) -> None:
    """``function``'s container after invocations of ``seconds``, one a build:
    what ``builds`` build is cached, sized for that budget (the API's cache is "")."""
    for build in builds:
        with deps.within(function), budget.invocation(LocalContext(function, "", int(seconds * 1000))):
            build()


def transient_errors(state: str) -> list[str]:
    """The error names the state's transient Retry policy (MaxDelaySeconds) retries."""
    [retrier] = [r for r in DEFINITION["States"][state]["Retry"] if "MaxDelaySeconds" in r]
    return list(retrier["ErrorEquals"])


def test_given_dynamodb_hangs_when_an_admin_lists_tenants_then_503_with_retry_after_in_time(
    monkeypatch, tmp_path, silent, stage_variables
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", silent.url)
    client = short_api_client(tmp_path)
    warm("", SHORT_TIMEOUT_SECONDS, deps.tenants, deps.workflow)

    started = time.monotonic()
    response = client.http.get("/tenants?status=onboarding")
    elapsed = time.monotonic() - started

    assert response.status_code == 503, response.body
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "Code": "ServiceUnavailableError",
        "Message": "DynamoDB is unavailable right now; try again in 5 seconds"}
    assert silent.connections  # it did wait on the silent service
    assert elapsed < SHORT_TIMEOUT_SECONDS, f"answered after {elapsed:.2f} s"


def test_given_dynamodb_hangs_when_a_task_runs_then_it_raises_the_retried_error_in_time(
    monkeypatch, silent, stage_variables
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", silent.url)
    warm("create_tenant_record", SHORT_TIMEOUT_SECONDS, deps.tenants, deps.settings)

    started = time.monotonic()
    error, payload = lambdas(SHORT_TIMEOUT_SECONDS).invoke(
        "create_tenant_record", json.dumps(load_event("task_tenant.json")).encode())
    elapsed = time.monotonic() - started

    assert error == "Unhandled"  # as Lambda reports an exception to Step Functions
    reported = json.loads(payload)
    assert reported["errorType"] == "AwsServiceUnavailable", reported
    assert reported["errorType"] in transient_errors("Create Tenant Record")
    assert silent.connections
    assert elapsed < SHORT_TIMEOUT_SECONDS, f"raised after {elapsed:.2f} s"


def test_given_step_functions_hangs_when_a_sign_up_is_confirmed_then_the_trigger_fails_within_5_s(
    monkeypatch, silent, stage_variables
):
    # the trigger's real timeout: Cognito gives it 5 s in all
    timeout = CONFIG["lambda_functions"]["post_confirmation"]["lambda_timeout"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", silent.url)

    started = time.monotonic()
    error, payload = lambdas(timeout).invoke(
        "post_confirmation", json.dumps(load_event("post_confirmation.json")).encode())
    elapsed = time.monotonic() - started

    assert error == "Unhandled"
    assert json.loads(payload)["errorType"] == "AwsServiceUnavailable"
    assert silent.connections
    assert elapsed < timeout - MARGIN_SECONDS / 2, f"failed after {elapsed:.2f} s"


def test_given_stripe_hangs_when_the_customer_task_runs_then_stripe_unavailable_in_time(
    monkeypatch, silent
):
    with Stage(monkeypatch, stripe_api_base=silent.url) as stage:
        task = json.dumps(load_event("task_tenant.json")).encode()
        assert stage.lambdas.invoke(stage.resources.function_names["create_tenant_record"],
                                    task)[0] is None
        # warm: its clients built, and the Stripe key read from Secrets Manager
        import stripe  # noqa: F401 - loaded, as in a warm container
        warm("create_stripe_customer", SHORT_TIMEOUT_SECONDS, deps.tenants, deps.billing,
             lambda: deps.billing().stripe_client())

        started = time.monotonic()
        error, payload = LocalLambdas(stage.app, stage.resources.function_names,
                                      timeout_ms=SHORT_TIMEOUT_SECONDS * 1000).invoke(
            stage.resources.function_names["create_stripe_customer"], task)
        elapsed = time.monotonic() - started

        assert error == "Unhandled"
        reported = json.loads(payload)
        assert reported["errorType"] == "StripeUnavailable", reported
        assert reported["errorType"] in transient_errors("Create Stripe Customer")
        assert silent.connections, reported  # Stripe's endpoint was reached, and kept silent
        assert elapsed < SHORT_TIMEOUT_SECONDS, f"raised after {elapsed:.2f} s"
