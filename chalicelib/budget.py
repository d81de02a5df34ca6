"""Time budgets: every invocation answers before Lambda (or API Gateway) gives up on it.

A route whose services hang must still answer 503 with ``Retry-After``, and a
task must still raise its transient error by name, so that the state machine's
Retry applies: if Lambda's timeout came first, the caller would get API
Gateway's 502, and the state machine a ``States.Timeout`` that its transient
policy does not retry. So every AWS and Stripe call waits only as long as the
invocation has left.

How it works:

- **A deadline per invocation.** ``per_invocation``, a Chalice middleware for
  every event type (app.py registers it once), reads Lambda's
  ``context.get_remaining_time_in_millis()`` as the invocation starts and keeps
  ``MARGIN_SECONDS`` of it back to answer: the 503, or the error Lambda reports.
  The rest is the invocation's ``Budget``, held in a ContextVar (the local stack
  runs many invocations at once, each in a thread of its own). Lambda always
  hands a context; a handler called without one (a test, a script) gets
  ``NO_CONTEXT_SECONDS``. Outside any invocation (scripts, the local stack's
  own set-up) there is no budget, and the clients' own timeouts and retries
  apply unchanged.
- **Clients are built once per container and obey each invocation's budget.**
  A client's connect and read timeouts are sized on the budget of the
  invocation that builds it (``sized_timeouts``): every invocation of the
  function starts with that much, so one attempt always fits in a fresh one.
  (A client built outside any invocation, as the local stack's warm-up does,
  keeps its own timeouts; its connect timeout, at most 2 s, fits the shortest
  budget, a Cognito trigger's 4 s.) The connect timeout is fixed once the
  client is built; the read timeout is cut per attempt.
  ``bound_to_budget`` then registers two botocore hooks on the client, once:
  before each attempt is sent (``before-send``) it is refused unless a connect
  and ``MIN_READ_SECONDS`` of reading still fit, and its read timeout is cut to
  what is left (botocore reads a per-request read timeout from the request's
  context: ``tests/unit/test_budget.py`` has a canary for it). Before each of
  botocore's own retries (``needs-retry``) the retry is refused unless its
  longest backoff and another attempt still fit. A refusal raises
  ``AwsServiceUnavailable``, the name the state machines retry on and that
  ``http_errors.answers`` turns into a 503. So the number of attempts is the
  client's ceiling (botocore's ``total_max_attempts``) or what the time left
  allows, whichever is smaller, and neither an attempt nor a sleep runs past
  the deadline.
- **Stripe** gets the same: stripe-python takes the number of retries per
  request, so billing.py asks ``stripe_retries`` for the number whose worst
  case fits in the time left, and its HTTP adapter asks ``attempt_timeouts``
  for each attempt's timeouts (or refuses it, as StripeUnavailable).

Why this rather than timeouts fixed per client: a route makes 3–5 calls, and a
task a few; one DynamoDB call alone may take 3 × (2 + 5) s plus backoff when
the service hangs. Fixed timeouts small enough for the sum would fail calls
that are merely slow; refusing every attempt whose whole timeouts do not fit
would give up with seconds still left; these hooks give each attempt what is
left, and only what is left. And why hooks rather than a client per
invocation: building a client costs tens of milliseconds at Lambda's CPU
share, and the cached one keeps its connections warm.

What the budget does not bound: a read timeout is per socket read, so a
service that trickles bytes could still hold an attempt longer (AWS and Stripe
answer whole, or not at all); and work between calls. A compensating call
after a failure (releasing a decision's claim, undoing a retry) gets only what
is left too: the claim's lease and the reconciler cover one that does not fit.

This module imports nothing heavy: app.py imports it for every function.
"""
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# Kept back from Lambda's deadline to answer: log the outage, build the 503
# (or raise the error Lambda reports), and hand it back. Milliseconds at a full
# core, tens of milliseconds at 128 MB's share; a second is ample, and is the
# most a Cognito trigger can spare of its 5 s.
MARGIN_SECONDS = 1.0
# The shortest read an attempt is worth starting with: DynamoDB and Step
# Functions answer in milliseconds, Stripe in a few hundred.
MIN_READ_SECONDS = 0.5
# A handler called without Lambda's context (a test, a script): the API
# function's timeout (.chalice/config.json), so nothing waits longer than a route may.
NO_CONTEXT_SECONDS = 20.0
# At most this share of a budget goes on connecting (a client's connect timeout
# is fixed once it is built; what is left of an attempt is reading).
CONNECT_SHARE = 0.25
# botocore's standard retry mode (the clients' mode, dependencies.py) sleeps up
# to 2 ** (attempts - 1) seconds after a throttle (a twentieth of that after
# other errors), at most 20, and up to 5 s more when the service asks for it
# (x-amz-retry-after, in milliseconds). tests/unit/test_budget.py checks it.
AWS_BACKOFF_BASE = 2.0
AWS_MAX_BACKOFF_SECONDS = 20.0
AWS_RETRY_AFTER_MAX_ADDITIONAL_SECONDS = 5.0
# stripe-python sleeps at least 0.5 s and up to 0.5 * 2 ** (retry - 1) before a
# retry, at most 5 (HTTPClient.INITIAL_DELAY and MAX_DELAY; a test checks them).
STRIPE_INITIAL_DELAY_SECONDS = 0.5
STRIPE_MAX_DELAY_SECONDS = 5.0


@dataclass(frozen=True)
class Budget:
    """One invocation's time: ``deadline`` (``time.monotonic()``) is when its
    work must be done, Lambda's own deadline less the margin; ``seconds`` is
    how long it had for that work when it started."""

    deadline: float
    seconds: float

    @classmethod
    def starting_now(cls, seconds_left: float, margin: float = MARGIN_SECONDS) -> "Budget":
        """The budget of an invocation that has ``seconds_left`` before Lambda ends it."""
        seconds = max(0.0, seconds_left - margin)
        return cls(deadline=time.monotonic() + seconds, seconds=seconds)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


_budget: ContextVar[Budget | None] = ContextVar("budget", default=None)


def current() -> Budget | None:
    """The budget of the invocation under way in this thread (None outside one)."""
    return _budget.get()


def seconds_left_in(context: Any) -> float:
    """What Lambda's context says is left, in seconds (NO_CONTEXT_SECONDS without one)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return NO_CONTEXT_SECONDS
    return max(0.0, float(remaining()) / 1000.0)


@contextmanager
def invocation(context: Any) -> Iterator[Budget]:
    """The calls made inside have what is left of this invocation, less the margin."""
    budget = Budget.starting_now(seconds_left_in(context))
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def per_invocation(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every event type: a route's Request carries
    Lambda's context as ``lambda_context``; a Lambda function's and a
    schedule's event as ``context``."""
    if hasattr(event, "lambda_context"):
        context = event.lambda_context
    else:
        context = getattr(event, "context", None)
    with invocation(context):
        return get_response(event)


# --- the arithmetic ------------------------------------------------------------------
def sized_timeouts(connect: float, read: float, seconds: float | None) -> tuple[float, float]:
    """A client's (connect, read) timeouts for invocations of ``seconds``: at most
    CONNECT_SHARE of them connecting, and reading no longer than the rest.
    Unchanged outside an invocation (``seconds`` None)."""
    if seconds is None:
        return connect, read
    connect = max(0.1, min(connect, seconds * CONNECT_SHARE))
    return connect, max(MIN_READ_SECONDS, min(read, seconds - connect))


def sized_now(connect: float, read: float) -> tuple[float, float]:
    """``sized_timeouts`` for the invocation under way (unchanged outside one)."""
    invocation = _budget.get()
    return sized_timeouts(connect, read, invocation.seconds if invocation else None)


def attempt_timeouts(remaining: float, connect: float, read: float) -> tuple[float, float] | None:
    """One attempt's (connect, read) that ends within ``remaining`` seconds, or
    None when not even a connect and MIN_READ_SECONDS of reading fit."""
    if remaining < connect + MIN_READ_SECONDS:
        return None
    return connect, min(read, remaining - connect)


def aws_backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """The longest botocore (standard mode) sleeps after ``attempts`` attempts,
    the last answered with ``retry_after`` seconds asked for (or not)."""
    backoff = min(AWS_BACKOFF_BASE ** (attempts - 1), AWS_MAX_BACKOFF_SECONDS)
    if retry_after is None:
        return backoff
    return max(backoff, min(retry_after, backoff + AWS_RETRY_AFTER_MAX_ADDITIONAL_SECONDS))


def aws_retry_fits(remaining: float, attempts: int, connect: float,
                   retry_after: float | None = None) -> bool:
    """Whether botocore may sleep and try again with ``remaining`` seconds left."""
    sleep = aws_backoff_seconds(attempts, retry_after)
    return attempt_timeouts(remaining - sleep, connect, MIN_READ_SECONDS) is not None


def stripe_sleep_seconds(retry: int) -> float:
    """The longest stripe-python sleeps before its ``retry``-th retry."""
    return max(STRIPE_INITIAL_DELAY_SECONDS,
               min(STRIPE_INITIAL_DELAY_SECONDS * 2.0 ** (retry - 1), STRIPE_MAX_DELAY_SECONDS))


def stripe_retries(remaining: float, connect: float, read: float, most: int) -> int:
    """How many retries (at most ``most``) fit in ``remaining`` seconds if every
    attempt waits its whole (connect + read) and every sleep is its longest."""
    retries = 0
    while retries < most:
        worst = (retries + 2) * (connect + read) + sum(
            stripe_sleep_seconds(n) for n in range(1, retries + 2))
        if worst > remaining:
            break
        retries += 1
    return retries


# --- botocore clients ------------------------------------------------------------------
def bound_to_budget(client: Any, service: str, connect: float, read: float, max_attempts: int) -> None:
    """Register the hooks that hold ``client`` (built with these timeouts and
    attempts) to the budget of whichever invocation uses it. ``service`` names
    it as the 503 does ("DynamoDB")."""
    from chalicelib.errors import AwsServiceUnavailable

    def out_of_time(remaining: float, what: str) -> AwsServiceUnavailable:
        return AwsServiceUnavailable(
            f"{service} is unavailable: {what} does not fit in the {remaining:.1f} s left "
            "of this invocation; will retry", service=service)

    def before_attempt(request: Any, **_: Any) -> None:
        budget = _budget.get()
        if budget is None:
            return
        remaining = budget.remaining()
        timeouts = attempt_timeouts(remaining, connect, read)
        if timeouts is None:
            raise out_of_time(remaining, "another attempt")
        # botocore (1.44) reads a per-request read timeout from the request's
        # context; the connect timeout stays the client's. Without that
        # context, only an attempt of the client's whole timeouts may start.
        context = getattr(request, "context", None)
        if isinstance(context, dict):
            context["read_timeout"] = timeouts[1]
        elif timeouts[1] < read:
            raise out_of_time(remaining, "another attempt")

    def before_retry(attempts: int, response: Any, caught_exception: Any, **_: Any) -> None:
        budget = _budget.get()
        if budget is None or attempts >= max_attempts or not _retryable(response, caught_exception):
            return
        remaining = budget.remaining()
        if not aws_retry_fits(remaining, attempts, connect, _retry_after(response)):
            raise out_of_time(remaining, f"a retry after {attempts} attempt(s)") from caught_exception

    # Named for the service, so they run before botocore's own retry handler
    # (an emitter runs the more specific event's handlers first), and first
    # among the service's, before anything that would answer or send.
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-send.{service_id}", before_attempt)
    client.meta.events.register_first(f"needs-retry.{service_id}", before_retry)


def _retry_after(response: Any) -> float | None:
    """The wait an AWS answer asks for before a retry (x-amz-retry-after), in seconds."""
    headers = getattr(response[0], "headers", None) if response else None
    try:
        return int(headers["x-amz-retry-after"]) / 1000.0 if headers else None
    except (KeyError, TypeError, ValueError):
        return None


def _retryable(response: Any, caught_exception: Any) -> bool:
    """What botocore's standard mode retries: no answer, a throttle or a 5xx."""
    from chalicelib.errors import TRANSIENT_AWS_ERROR_CODES, is_network_error

    if caught_exception is not None:
        return is_network_error(caught_exception)
    if not response:
        return False
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "")
    status = int(getattr(http, "status_code", 0) or 0)
    return status >= 500 or status == 429 or code in TRANSIENT_AWS_ERROR_CODES
