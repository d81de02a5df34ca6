"""The time budget (chalicelib/budget.py): its arithmetic, the deadline each
invocation gets, the hooks that hold a botocore client to it, and canaries
for what the budget relies on in botocore and stripe-python (pinned in
requirements.txt): each fails the day a new version behaves otherwise."""
import time
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from chalicelib import budget
from chalicelib.budget import MARGIN_SECONDS, MIN_READ_SECONDS, NO_CONTEXT_SECONDS, Budget
from chalicelib.errors import AwsServiceUnavailable
from scripts.local.lambdas import LocalContext
from tests.support.faults import SilentEndpoint, unreachable
from tests.unit.conftest import REGION


def context(seconds: float) -> LocalContext:
    """Lambda's context with ``seconds`` left."""
    return LocalContext("f", "arn:aws:lambda:us-east-1:123456789012:function:f", int(seconds * 1000))


# --- the deadline -------------------------------------------------------------------
def test_given_lambdas_context_when_an_invocation_starts_then_its_budget_keeps_the_margin_back():
    with budget.invocation(context(10)) as started:
        assert budget.current() is started
        assert started.seconds == pytest.approx(10 - MARGIN_SECONDS, abs=0.05)
        assert started.remaining() == pytest.approx(10 - MARGIN_SECONDS, abs=0.05)
    assert budget.current() is None  # outside an invocation: no budget


def test_given_no_context_when_an_invocation_starts_then_it_gets_the_default():
    with budget.invocation(None) as started:
        assert started.seconds == pytest.approx(NO_CONTEXT_SECONDS - MARGIN_SECONDS, abs=0.05)


def test_given_less_time_than_the_margin_when_an_invocation_starts_then_nothing_is_left():
    assert Budget.starting_now(0.5).remaining() == 0.0


def test_given_an_invocation_inside_another_when_it_ends_then_the_outer_budget_is_back():
    with budget.invocation(context(30)) as outer:
        with budget.invocation(context(3)) as inner:
            assert budget.current() is inner
        assert budget.current() is outer


def test_given_the_middleware_when_a_route_or_a_function_runs_then_each_has_its_own_context():
    seen = []

    def handler(event):
        seen.append(budget.current().seconds)
        return "answer"

    # a route's Request: Lambda's context is lambda_context (context is API Gateway's)
    request = SimpleNamespace(lambda_context=context(8), context={"resourcePath": "/tenants"})
    # a Lambda function's or a schedule's event (chalice.app.LambdaFunctionEvent)
    function_event = SimpleNamespace(context=context(4))

    assert budget.per_invocation(request, handler) == "answer"
    assert budget.per_invocation(function_event, handler) == "answer"
    assert seen == [pytest.approx(8 - MARGIN_SECONDS, abs=0.05),
                    pytest.approx(4 - MARGIN_SECONDS, abs=0.05)]
    assert budget.current() is None


def test_the_app_applies_the_budget_to_every_event_type():
    import app

    assert (budget.per_invocation, "all") in app.app.middleware_handlers


# --- the arithmetic -------------------------------------------------------------------
def test_given_no_budget_when_a_client_is_sized_then_its_own_timeouts_stand():
    assert budget.sized_timeouts(2, 5, None) == (2, 5)


def test_given_a_budget_roomier_than_the_timeouts_when_sized_then_they_stand():
    assert budget.sized_timeouts(2, 5, 19) == (2, 5)


def test_given_a_short_budget_when_a_client_is_sized_then_one_attempt_fits_in_it():
    connect, read = budget.sized_timeouts(2, 5, 2)

    assert connect == pytest.approx(0.5)  # CONNECT_SHARE of it
    assert connect + read == pytest.approx(2)


def test_given_time_left_when_an_attempt_starts_then_its_read_ends_by_the_deadline():
    assert budget.attempt_timeouts(10, 2, 5) == (2, 5)
    assert budget.attempt_timeouts(4, 2, 5) == (2, pytest.approx(2))
    assert budget.attempt_timeouts(2 + MIN_READ_SECONDS, 2, 5) == (2, pytest.approx(MIN_READ_SECONDS))


def test_given_less_than_a_connect_and_a_short_read_when_an_attempt_would_start_then_none():
    assert budget.attempt_timeouts(2 + MIN_READ_SECONDS - 0.01, 2, 5) is None


def test_botocore_standard_backoff_doubles_up_to_20_s_and_a_retry_after_adds_at_most_5():
    assert [budget.aws_backoff_seconds(n) for n in (1, 2, 3, 5, 6, 9)] == [1, 2, 4, 16, 20, 20]
    assert budget.aws_backoff_seconds(2, retry_after=60) == 2 + 5
    assert budget.aws_backoff_seconds(2, retry_after=0.5) == 2


def test_given_the_time_left_when_botocore_would_retry_then_only_if_its_sleep_and_an_attempt_fit():
    # after 2 attempts botocore sleeps up to 2 s; an attempt needs 2 s + MIN_READ
    assert budget.aws_retry_fits(2 + 2 + MIN_READ_SECONDS, attempts=2, connect=2)
    assert not budget.aws_retry_fits(2 + 2 + MIN_READ_SECONDS - 0.01, attempts=2, connect=2)
    # the service asks for 30 s: botocore sleeps up to 2 + 5 s
    assert budget.aws_retry_fits(9, attempts=2, connect=2)
    assert not budget.aws_retry_fits(9, attempts=2, connect=2, retry_after=30)


def test_given_the_time_left_when_stripe_retries_are_counted_then_their_worst_case_fits():
    # a task's minute: 3 attempts of 3 + 10 s and sleeps of 0.5 and 1 s
    assert budget.stripe_retries(59, 3, 10, most=2) == 2
    assert budget.stripe_retries(2 * 13 + 0.5, 3, 10, most=2) == 1
    assert budget.stripe_retries(2 * 13 + 0.49, 3, 10, most=2) == 0
    assert budget.stripe_retries(600, 3, 10, most=2) == 2  # never more than asked
    assert [budget.stripe_sleep_seconds(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 5]


# --- a botocore client held to the budget --------------------------------------------
def bound_client(connect: float = 0.5, read: float = 1.5, attempts: int = 3):
    client = boto3.session.Session(region_name=REGION).client(
        "dynamodb", config=Config(connect_timeout=connect, read_timeout=read,
                                  retries={"mode": "standard", "total_max_attempts": attempts}))
    budget.bound_to_budget(client, "DynamoDB", connect, read, attempts)
    return client


class Sends:
    """Counts the attempts that got as far as being sent, and their read timeouts."""

    def __init__(self, client):
        self.read_timeouts = []
        client.meta.events.register("before-send", self)

    def __call__(self, request, **_):
        self.read_timeouts.append(request.context.get("read_timeout"))


def test_given_no_invocation_when_a_bound_client_calls_then_nothing_changes(aws):
    client = bound_client()
    sends = Sends(client)

    client.list_tables()

    assert sends.read_timeouts == [None]  # the client's own read timeout


def test_given_time_left_when_a_bound_client_calls_then_its_read_is_cut_to_the_deadline(aws):
    client = bound_client(connect=0.5, read=30)
    sends = Sends(client)

    with budget.invocation(context(4)):
        client.list_tables()

    [read] = sends.read_timeouts
    assert 4 - MARGIN_SECONDS - 0.5 - 0.5 < read <= 4 - MARGIN_SECONDS - 0.5


def test_given_no_time_left_when_a_bound_client_calls_then_it_is_refused_before_sending(aws):
    client = bound_client()
    sends = Sends(client)

    with budget.invocation(context(MARGIN_SECONDS + 0.5)), \
            pytest.raises(AwsServiceUnavailable, match="DynamoDB is unavailable") as refused:
        client.list_tables()

    assert refused.value.service == "DynamoDB"
    assert sends.read_timeouts == []


def test_given_a_service_out_of_reach_when_the_budget_runs_short_then_retries_stop_early(aws):
    # every attempt fails at once; botocore would make 3, the budget fits 2:
    # after the second, its sleep (up to 2 s) and another attempt do not fit in 2.5 s
    client = bound_client(connect=0.5, read=1.5, attempts=3)
    fault = unreachable(client.meta, "dynamodb.ListTables", 10, "read timeout")

    with budget.invocation(context(2.5 + MARGIN_SECONDS)), \
            pytest.raises(AwsServiceUnavailable, match="a retry after 2 attempt") as refused:
        client.list_tables()

    assert fault.sends == 2
    assert isinstance(refused.value.__cause__, ReadTimeoutError)


def test_given_plenty_of_time_when_a_service_is_out_of_reach_then_botocore_retries_as_configured(aws):
    client = bound_client(attempts=3)
    fault = unreachable(client.meta, "dynamodb.ListTables", 10, "read timeout")

    with budget.invocation(context(30)), pytest.raises(ReadTimeoutError):
        client.list_tables()

    assert fault.sends == 3


# --- canaries: what the budget relies on -----------------------------------------------
def test_canary_botocore_takes_a_read_timeout_per_request_from_its_context():
    # budget.bound_to_budget cuts each attempt's read this way (botocore 1.44's
    # URLLib3Session._get_request_timeout); if this fails, it must find another
    with SilentEndpoint() as silent:
        client = boto3.session.Session(region_name=REGION).client(
            "dynamodb", endpoint_url=silent.url,
            config=Config(connect_timeout=1, read_timeout=60,
                          retries={"mode": "standard", "total_max_attempts": 1}))
        client.meta.events.register(
            "before-send", lambda request, **_: request.context.update(read_timeout=0.3))

        started = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            client.list_tables()

    assert time.monotonic() - started < 5


def test_canary_botocore_max_attempts_counts_retries_and_total_max_attempts_counts_all(aws):
    counted = {}
    for key in ("max_attempts", "total_max_attempts"):
        client = boto3.session.Session(region_name=REGION).client(
            "dynamodb", config=Config(retries={"mode": "standard", key: 2}))
        fault = unreachable(client.meta, "dynamodb.ListTables", 10, "connection refused")
        with pytest.raises(Exception):  # noqa: B017 - the sends are what is checked
            client.list_tables()
        counted[key] = fault.sends

    assert counted == {"max_attempts": 3, "total_max_attempts": 2}


def test_canary_botocore_standard_backoff_is_bounded_as_the_budget_assumes():
    from botocore.awsrequest import AWSResponse, HTTPHeaders
    from botocore.retries.standard import ExponentialBackoff, RetryContext

    throttled = SimpleNamespace(is_throttling_error_from_context=lambda context: True)
    longest = ExponentialBackoff(random=lambda: 1.0, throttling_detector=throttled)
    for attempt in range(1, 8):
        assert longest.delay_amount(RetryContext(attempt_number=attempt)) == pytest.approx(
            budget.aws_backoff_seconds(attempt))
        asked = AWSResponse("", 400, HTTPHeaders.from_dict({"x-amz-retry-after": "60000"}), None)
        assert longest.delay_amount(RetryContext(attempt_number=attempt, http_response=asked)) \
            == pytest.approx(budget.aws_backoff_seconds(attempt, retry_after=60))


def test_canary_stripe_python_sleeps_between_retries_as_the_budget_assumes():
    import stripe

    assert stripe.HTTPClient.INITIAL_DELAY == budget.STRIPE_INITIAL_DELAY_SECONDS
    assert stripe.HTTPClient.MAX_DELAY == budget.STRIPE_MAX_DELAY_SECONDS
