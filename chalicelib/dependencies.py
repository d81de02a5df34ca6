"""Lazily built, cached clients and services, one set per Lambda container.

Nothing here runs at import time: a cold start pays only for what the
invoked function uses. Tests call ``reset()`` (or replace an entry with
``override``) so no client leaks from one test to the next.

In Lambda every function has containers of its own, so nothing built for one
function serves another. The local stack runs them all in one process: it
runs each invocation ``within(<function>)``, which gives each function its
own cache, as its own containers would have.
"""
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from chalicelib.billing import BillingProvider
    from chalicelib.contact_lists import ContactListPlaces, ContactListProvider
    from chalicelib.events import EventPublisher
    from chalicelib.logins import TenantLogins
    from chalicelib.my_subscribers import MySubscribers
    from chalicelib.offboarding import Offboardings
    from chalicelib.outcome_mail import OutcomeMail
    from chalicelib.outcomes import Outcomes
    from chalicelib.reconciler import Reconciler
    from chalicelib.releases import TenantReleases
    from chalicelib.ses_tenants import SesTenants
    from chalicelib.settings import Settings
    from chalicelib.subscribers import SubscriberStore
    from chalicelib.tenants import TenantRepository
    from chalicelib.workflow import OffboardingWorkflow, OnboardingWorkflow

T = TypeVar("T")

_caches: dict[str, dict[str, Any]] = {}  # per function: its containers' cache
_overrides: dict[str, Any] = {}  # what a test put in place, for every function
_function: ContextVar[str] = ContextVar("function", default="")
_lock = threading.RLock()


def _cached(name: str, build: Callable[[], T]) -> T:
    # The local stack runs many executions in threads of one process; boto3
    # sessions are not safe to share while clients are being created.
    with _lock:
        if name in _overrides:
            return cast(T, _overrides[name])
        cache = _caches.setdefault(_function.get(), {})
        if name not in cache:
            cache[name] = build()
        return cast(T, cache[name])


@contextmanager
def within(function: str) -> Iterator[None]:
    """Build and reuse what ``function`` uses in a cache of its own (local stack)."""
    token = _function.set(function)
    try:
        yield
    finally:
        _function.reset(token)


def current_function() -> str:
    """The function whose cache is in use ("" outside ``within``)."""
    return _function.get()


def reset() -> None:
    with _lock:
        _caches.clear()
        _overrides.clear()


def override(name: str, value: Any) -> None:
    """``value`` in place of ``name`` for every function, until ``reset``."""
    with _lock:
        _overrides[name] = value


def forget(*names: str) -> None:
    """Drop ``names`` from every function's cache and from the overrides: each
    is built again on its next use."""
    with _lock:
        for name in names:
            _overrides.pop(name, None)
            for cache in _caches.values():
                cache.pop(name, None)


def built(name: str) -> list[Any]:
    """What each function has built as ``name`` so far (an override first)."""
    with _lock:
        found = [_overrides[name]] if name in _overrides else []
        return found + [cache[name] for cache in _caches.values() if name in cache]


# Each service's (connect timeout, read timeout, attempts in all) outside any
# budget: fail fast rather than hang, the state machine retries a task with its
# own backoff. Step Functions serves the Cognito trigger, which has 5 s in all.
# Inside an invocation, chalicelib/budget.py cuts each to what is left.
# ("attempts in all" is botocore's total_max_attempts: its max_attempts counts
# retries only, one fewer.) Keyed by client: a service's own, or a client of it
# kept for one call, as SEND_MAIL is.
# SEND_MAIL makes SES's SendEmail, in one attempt: SES has no idempotency key,
# so botocore retrying a send whose answer was lost (a read timeout, a closed
# connection) would mail the tenant again; outcome_mail.py decides instead.
# The outcome mail's other SES calls, and every other SES call, are retried.
SEND_MAIL = "sesv2-send"
CLIENT_LIMITS: dict[str, tuple[float, float, int]] = {
    "stepfunctions": (0.5, 1.5, 2),
    SEND_MAIL: (2.0, 5.0, 1),
}
DEFAULT_CLIENT_LIMITS = (2.0, 5.0, 3)
# How the errors, the logs and the 503 name each service (errors.aws_call).
SERVICE_NAMES = {
    "dynamodb": "DynamoDB",
    "stepfunctions": "Step Functions",
    "events": "EventBridge",
    "sesv2": "SES",
    "secretsmanager": "Secrets Manager",
    "cognito-idp": "Cognito",
}


def client_limits(name: str, environ: Mapping[str, str] | None = None) -> tuple[float, float, int]:
    """A client's (connect, read, attempts) before any budget. The local stack
    widens the read timeout (AWS_CLIENT_TIMEOUT_SECONDS): its emulator, on this
    machine, connects at once but may take seconds to answer under load. The
    connect timeout stays short (2 s at most), so a client fits every
    function's budget (the shortest, a trigger's, is 4 s), whichever
    invocation built it (budget.py)."""
    environ = os.environ if environ is None else environ
    connect, read, attempts = CLIENT_LIMITS.get(name, DEFAULT_CLIENT_LIMITS)
    override = environ.get("AWS_CLIENT_TIMEOUT_SECONDS")
    if override:
        read = float(override)
    return connect, read, attempts


def _client(service: str, name: str = "") -> Any:
    """The client of ``service`` named ``name`` (its limits and cache entry;
    the service's own client by default)."""
    name = name or service

    def build() -> Any:
        from botocore.config import Config

        from chalicelib import budget

        connect, read, attempts = client_limits(name)
        # Sized on the budget of the invocation that builds it: every later
        # invocation of this function starts with as much (budget.py).
        connect, read = budget.sized_now(connect, read)
        config = Config(connect_timeout=connect, read_timeout=read,
                        retries={"mode": "standard", "total_max_attempts": attempts})
        client = _session().client(service, config=config)
        budget.bound_to_budget(client, SERVICE_NAMES.get(service, service), connect, read, attempts)
        return client

    return _cached(f"client:{name}", build)


def _session() -> Any:
    def build() -> Any:
        import gc

        import boto3

        session = boto3.session.Session()
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in Lambda, not in tests
            # What the container has loaded so far (Chalice, the app, boto3
            # and botocore) lives as long as it does: out of every garbage
            # collection from now on, so the first call does not pay a full
            # collection that walks all of it (~30 ms an entry point, make bench).
            gc.freeze()
        return session

    return _cached("session", build)


def settings() -> "Settings":
    from chalicelib.settings import Settings

    return _cached("settings", Settings.from_environ)


def tenants() -> "TenantRepository":
    from chalicelib.tenants import TenantRepository

    return _cached(
        "tenants",
        lambda: TenantRepository(_client("dynamodb"), settings().tenant_table_name),
    )


def workflow() -> "OnboardingWorkflow":
    from chalicelib.workflow import OnboardingWorkflow

    return _cached(
        "workflow",
        lambda: OnboardingWorkflow(
            _client("stepfunctions"), settings().require_state_machine_arn()
        ),
    )


def publisher() -> "EventPublisher":
    from chalicelib.events import EventPublisher

    return _cached(
        "publisher",
        lambda: EventPublisher(
            _client("events"), settings().event_bus_name, settings().event_source
        ),
    )


def outcomes() -> "Outcomes":
    from chalicelib.outcomes import Outcomes

    return _cached("outcomes", lambda: Outcomes(tenants(), publisher(), mail=outcome_mail()))


def outcome_mail() -> "OutcomeMail":
    """The tenant's outcome mail: from the stage's sender, or none without one."""
    from chalicelib.outcome_mail import OutcomeMail

    def build() -> "OutcomeMail":
        config = settings()
        # no sender, no SES client: nothing is sent, so nothing is built for it
        sender = config.ses_sender_address
        return OutcomeMail(_client("sesv2") if sender else None,
                           _client("sesv2", SEND_MAIL) if sender else None,
                           tenants(), sender, config.signup_page_url,
                           config.ses_sender_identity_arn)

    return _cached("outcome_mail", build)


def offboardings() -> "Offboardings":
    from chalicelib.offboarding import Offboardings

    return _cached("offboardings", lambda: Offboardings(tenants(), publisher()))


def contact_lists() -> "ContactListProvider":
    """The stage's contact-list mode: where onboarding puts a new tenant."""
    def build() -> "ContactListProvider":
        config = settings()
        return _contact_list_mode(config.contact_list_mode, config.shared_contact_list)

    return _cached("contact_lists", build)


def contact_list_places() -> "ContactListPlaces":
    """Gives a place back by the mode its record names (releases)."""
    def build() -> "ContactListPlaces":
        from chalicelib.contact_lists import ContactListPlaces
        from chalicelib.settings import CONTACT_LIST_MODES

        return ContactListPlaces({
            mode: (lambda place, mode=mode: _contact_list_mode(mode, place.list))
            for mode in CONTACT_LIST_MODES})

    return _cached("contact_list_places", build)


def _contact_list_mode(mode: str, shared_list: str | None) -> "ContactListProvider":
    from chalicelib import contact_lists as ses
    from chalicelib.settings import LIST_PER_TENANT, TOPIC_PER_TENANT

    if mode == LIST_PER_TENANT:
        return ses.ContactLists(_client("sesv2"))
    if mode == TOPIC_PER_TENANT and shared_list:
        from chalicelib.locks import LeaseLock

        lock = LeaseLock(_client("dynamodb"), settings().tenant_table_name, shared_list)
        return ses.SharedListTopics(_client("sesv2"), shared_list, lock)
    return ses.SubscriberStoreLists(ses_tenants(), subscriber_store())


def ses_tenants() -> "SesTenants":
    from chalicelib.ses_tenants import SesTenants

    return _cached("ses_tenants", lambda: SesTenants(_client("sesv2"), settings().stage))


def subscriber_store() -> "SubscriberStore":
    from chalicelib.subscribers import SubscriberStore

    return _cached("subscriber_store",
                   lambda: SubscriberStore(_client("dynamodb"), settings().tenant_table_name))


def my_subscribers() -> "MySubscribers":
    from chalicelib.my_subscribers import MySubscribers

    return _cached("my_subscribers", lambda: MySubscribers(tenants(), subscriber_store()))


def billing() -> "BillingProvider":
    """Stripe on a stage with a Stripe secret; no billing otherwise."""
    def build() -> "BillingProvider":
        from chalicelib.billing import NoBilling, StripeBilling, StripeKeyProvider

        config = settings()
        if not config.stripe_secret_id:
            return NoBilling()
        key = StripeKeyProvider(_client("secretsmanager"), config.stripe_secret_id)
        timeout = config.stripe_timeout_seconds
        if timeout:
            return StripeBilling(key, api_base=config.stripe_api_base,
                                 http_timeout=(timeout, timeout))
        return StripeBilling(key, api_base=config.stripe_api_base)

    return _cached("billing", build)


def reconciler() -> "Reconciler":
    from chalicelib.reconciler import Reconciler, metrics_namespace

    return _cached(
        "reconciler",
        lambda: Reconciler(
            tenants(), workflow(), publisher(), offboarding(),
            reminder_seconds=settings().approval_reminder_seconds,
            grace_seconds=settings().reconcile_grace_seconds,
            metrics_namespace=metrics_namespace(settings().stage),
            mail=outcome_mail(),
        ),
    )


def offboarding() -> "OffboardingWorkflow":
    from chalicelib.workflow import OffboardingWorkflow

    return _cached(
        "offboarding",
        lambda: OffboardingWorkflow(
            _client("stepfunctions"), settings().require_offboarding_state_machine_arn()
        ),
    )


def logins() -> "TenantLogins":
    from chalicelib.logins import TenantLogins

    return _cached(
        "logins",
        lambda: TenantLogins(_client("cognito-idp"), settings().require_user_pool_id()),
    )


def releases() -> "TenantReleases":
    from chalicelib.clock import utc_now
    from chalicelib.releases import TenantReleases

    return _cached(
        "releases",
        lambda: TenantReleases(tenants(), contact_list_places(), logins(), billing, utc_now),
    )
