"""Every function's timeout is set on purpose, every lease outlives the work
under it, and every function answers within its timeout however its services
behave: the budget's arithmetic (chalicelib/budget.py) on config.json's values."""
import json

import pytest

from chalicelib import budget
from chalicelib.billing import HTTP_TIMEOUT
from chalicelib.dependencies import CLIENT_LIMITS, client_limits
from chalicelib.locks import LeaseLock
from chalicelib.tenant_admin import CLAIM_LEASE_SECONDS
from scripts.deploy.template import app_functions
from scripts.shared import PROJECT_DIR

CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
TIMEOUTS = {name: spec["lambda_timeout"] for name, spec in CONFIG["lambda_functions"].items()}
API_GATEWAY_SECONDS = 29  # API Gateway's integration timeout: then it answers 504 itself
TRIGGERS = ("pre_sign_up", "post_confirmation")
SERVICES = ("dynamodb", "sesv2", "events", "secretsmanager", "cognito-idp", *CLIENT_LIMITS)


def test_every_function_has_an_explicit_timeout():
    assert set(TIMEOUTS) == set(app_functions())


def test_the_cognito_triggers_fit_cognitos_five_seconds():
    assert TIMEOUTS["pre_sign_up"] <= 5 and TIMEOUTS["post_confirmation"] <= 5


def test_the_api_fits_api_gateways_29_seconds_and_a_claim_outlives_a_request():
    # Lambda's timeout is whole seconds: 28 at most leaves API Gateway a second
    assert TIMEOUTS["api_handler"] <= API_GATEWAY_SECONDS - 1
    assert CLAIM_LEASE_SECONDS >= 2 * TIMEOUTS["api_handler"]


def test_the_contact_list_lock_outlives_the_functions_that_hold_it():
    # a holder cannot still be writing when its lease runs out: its function ends first
    lease = LeaseLock(None, "table", "list")._lease
    for holder in ("create_contact_list", "release_tenant_resources"):
        assert lease >= 2 * TIMEOUTS[holder], holder


def test_a_claim_to_be_sending_the_outcome_mail_outlives_the_functions_that_send_it():
    # an attempt cannot still be sending when its claim is taken as dead: its function ends first
    from chalicelib.outcome_mail import SENDING_LEASE_SECONDS

    for sender in ("update_status_and_notify", "reconcile"):
        assert SENDING_LEASE_SECONDS >= TIMEOUTS[sender], sender


# --- the time budget on config.json's values ---------------------------------------------
def unbudgeted_call_seconds(service: str) -> float:
    """One call to a service that never answers, with no budget: every attempt
    waits its connect and read timeouts, every sleep is botocore's longest."""
    connect, read, attempts = client_limits(service, environ={})
    return attempts * (connect + read) + sum(budget.aws_backoff_seconds(n) for n in range(1, attempts))


def call_seconds(seconds_left: float, budget_seconds: float, service: str, answers: bool) -> float:
    """How long one call takes with ``seconds_left`` of a budget of
    ``budget_seconds`` (which sized its client), as budget.py's hooks allow it:
    each attempt waits the longest it may (its connect, then its read), and
    either answers just then (``answers``) or is never answered; each sleep is
    botocore's longest. Once the budget refuses, the call raises."""
    connect, read, attempts = client_limits(service, environ={})
    connect, read = budget.sized_timeouts(connect, read, budget_seconds)
    spent, made = 0.0, 0
    while made < attempts:
        if made:
            if not budget.aws_retry_fits(seconds_left - spent, made, connect):
                break
            spent += budget.aws_backoff_seconds(made)
        timeouts = budget.attempt_timeouts(seconds_left - spent, connect, read)
        if timeouts is None:
            break
        spent += sum(timeouts)
        made += 1
        if answers:
            return spent
    return spent


def route_seconds(function: str, calls: int, answers: bool) -> float:
    """When a route (or task) making ``calls`` DynamoDB calls answers: each call
    is slow (answered just within its timeouts) or hangs; the first that fails
    ends it with a 503 (or the transient error), after the margin to answer."""
    seconds = TIMEOUTS[function] - budget.MARGIN_SECONDS
    spent = 0.0
    for _ in range(calls):
        took = call_seconds(seconds - spent, seconds, "dynamodb", answers)
        spent += took
        if not answers or took == 0:
            break
    return spent + budget.MARGIN_SECONDS


def test_without_the_budget_one_hung_call_outlasts_the_api_and_a_route_api_gateway():
    # what the budget is for: 3 attempts of (2 + 5) s and sleeps of up to 1 and 2 s
    assert unbudgeted_call_seconds("dynamodb") == 3 * (2 + 5) + 1 + 2 == 24
    assert unbudgeted_call_seconds("dynamodb") > TIMEOUTS["api_handler"]
    assert 3 * unbudgeted_call_seconds("dynamodb") > API_GATEWAY_SECONDS


@pytest.mark.parametrize("answers", [False, True], ids=["services hang", "services are slow"])
@pytest.mark.parametrize("calls", [1, 3, 5])
def test_a_route_answers_within_the_api_functions_timeout_whatever_its_services_do(calls, answers):
    answered = route_seconds("api_handler", calls, answers)

    assert answered <= TIMEOUTS["api_handler"] <= API_GATEWAY_SECONDS - 1


@pytest.mark.parametrize("function", sorted(TIMEOUTS))
def test_every_function_ends_within_its_timeout_whatever_its_services_do(function):
    for calls in (1, 5):
        for answers in (False, True):
            assert route_seconds(function, calls, answers) <= TIMEOUTS[function]
    for service in SERVICES:  # one call that hangs, to any service
        seconds = TIMEOUTS[function] - budget.MARGIN_SECONDS
        assert call_seconds(seconds, seconds, service, False) + budget.MARGIN_SECONDS \
            <= TIMEOUTS[function]


def test_each_tasks_budget_lets_one_hung_call_make_all_its_attempts():
    # so the budget only cuts the calls after it: a task's time is for retries
    for function, timeout in TIMEOUTS.items():
        if function in TRIGGERS or function == "api_handler":
            continue
        for service in SERVICES:
            assert unbudgeted_call_seconds(service) + budget.MARGIN_SECONDS <= timeout, (
                function, service)


def test_the_stripe_tasks_give_stripe_all_its_retries():
    for function in ("create_stripe_customer", "release_tenant_resources"):
        seconds = TIMEOUTS[function] - budget.MARGIN_SECONDS
        assert budget.stripe_retries(seconds, *HTTP_TIMEOUT, most=2) == 2, function


def test_the_confirmation_trigger_makes_a_second_attempt_only_when_the_first_failed_fast():
    seconds = TIMEOUTS["post_confirmation"] - budget.MARGIN_SECONDS
    connect, read, attempts = client_limits("stepfunctions", environ={})
    assert (connect, read, attempts) == (0.5, 1.5, 2)
    # a throttle answered at once: the retry fits
    assert budget.aws_retry_fits(seconds - 0.1, 1, connect)
    # a whole attempt lost, and the longest sleep: the retry gets what is left
    left = seconds - (connect + read) - budget.aws_backoff_seconds(1)
    assert budget.attempt_timeouts(left, connect, read) == (connect, pytest.approx(left - connect))


def test_a_handler_called_without_lambdas_context_gets_the_apis_time():
    assert budget.NO_CONTEXT_SECONDS == TIMEOUTS["api_handler"]
