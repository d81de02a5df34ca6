"""Every exception the app raises on purpose, in one place.

The task Lambdas' errors come first: the state machine retries and catches
on these class names (Lambda reports an unhandled exception's class name as
the error type), so renaming one means changing ``statemachine.json`` too;
a test checks that every name the definitions mention exists here.
Transient errors are retried with backoff; permanent ones go straight to
the failure path. Then the refusals the API turns into 4xx answers
(app.py's routes, tenant_admin.py), the Cognito triggers' refusals, and the
configuration's.
"""
from collections.abc import Iterator
from contextlib import contextmanager


class OnboardingError(Exception):
    """Base class; never raised directly."""


# --- transient: retried by the state machine ---------------------------------
class StripeUnavailable(OnboardingError):
    """Stripe rate-limited us, failed with a 5xx, timed out or could not be reached."""

    service = "Stripe"


class AwsServiceUnavailable(OnboardingError):
    """An AWS call was throttled, failed on the service side, or never got an answer."""

    def __init__(self, message: str, service: str = "") -> None:
        super().__init__(message)
        self.service = service


class EventPublishFailed(OnboardingError):
    """EventBridge accepted the call but reported a failed entry."""


class ContactListBusy(OnboardingError):
    """Another onboarding holds the shared contact list's lock; try again."""


class OutcomeMailInFlight(OnboardingError):
    """Another attempt is sending this outcome's mail right now; try again
    (outcome_mail.py): its claim says it is sending, and it may still."""


# --- permanent: straight to the failure path ---------------------------------
class StripeAuthenticationFailed(OnboardingError):
    """Stripe rejected our API key (wrong, revoked or missing secret)."""


class StripeNotConfigured(OnboardingError):
    """The Stripe step ran on a stage with no Stripe secret configured."""


class StripeRequestRejected(OnboardingError):
    """Stripe refused the request itself (a 4xx other than auth or 429)."""

    def __init__(self, message: str, code: "str | None" = None, status: int = 0) -> None:
        super().__init__(message)
        self.code = code  # Stripe's error code, e.g. resource_missing
        self.status = status  # its HTTP status

    @property
    def missing(self) -> bool:
        """Stripe has no such object (deleted, or never there)."""
        return self.code == "resource_missing" or self.status == 404


class ContactListQuotaReached(OnboardingError):
    """SES allows no more contact lists, or no more topics on the shared list."""


class TenantConflict(OnboardingError):
    """The record exists but belongs to someone else or has other values."""


class TenantNotFound(OnboardingError):
    """A step ran for a tenant whose record does not exist."""


class TenantAlreadyFinal(OnboardingError):
    """The tenant already reached a different final status."""


class InvalidTaskInput(OnboardingError):
    """The state machine handed a task input it cannot use."""


class InvalidEvent(OnboardingError):
    """An event that the catalogue (events.py) does not describe: a bug, which
    the state machine treats as any crash (retried twice, then failed)."""


# --- refusals the API answers with 4xx ------------------------------------------
class NotAwaitingDecision(Exception):
    """The tenant is not waiting for an admin's decision (status says why)."""

    def __init__(self, tenant_id: str, status: str | None, in_progress: bool = False) -> None:
        self.tenant_id = tenant_id
        self.status = status
        self.in_progress = in_progress
        if in_progress:
            message = f"tenant {tenant_id} is already being decided by another admin"
        else:
            message = f"tenant {tenant_id} is not awaiting a decision (status {status})"
        super().__init__(message)


class NotOffboardable(Exception):
    """Onboarding or already offboarding/offboarded (status says which)."""

    def __init__(self, tenant_id: str, status: str | None) -> None:
        self.tenant_id = tenant_id
        self.status = status
        what = ("is still onboarding: decide or wait for it first" if status == "onboarding"
                else f"is already {status}")
        super().__init__(f"tenant {tenant_id} {what}")


class NotRetryable(Exception):
    """Only a failed or timed-out onboarding can be retried (status says what it is)."""

    def __init__(self, tenant_id: str, status: str | None) -> None:
        self.tenant_id = tenant_id
        self.status = status
        super().__init__(
            f"tenant {tenant_id} is {status}: only a failed or timed-out onboarding "
            "can be retried"
        )


class TenantNotActive(Exception):
    """A tenant's own changes (its subscribers) need an active onboarding."""

    def __init__(self, tenant_id: str, status: str | None = None) -> None:
        self.tenant_id = tenant_id
        self.status = status
        super().__init__(f"tenant {tenant_id} is {status or 'not active'}")


class DecisionNotDelivered(Exception):
    """SendTaskSuccess refused the decision; ``reason`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # invalid_token | unknown_task | not_waiting


# --- Cognito's triggers -------------------------------------------------------------
class InvalidSignupEvent(ValueError):
    """The event is a sign-up confirmation but lacks what a tenant needs."""


class SignUpRefused(ValueError):
    """Raised by the pre sign-up trigger; Cognito shows the message to the client
    as "PreSignUp failed with error <message>." (so the message ends without a period)."""


# --- configuration --------------------------------------------------------------------
class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


TRANSIENT_ERRORS = (
    StripeUnavailable,
    AwsServiceUnavailable,
    EventPublishFailed,
    ContactListBusy,
    OutcomeMailInFlight,
)
PERMANENT_ERRORS = (
    StripeAuthenticationFailed,
    ContactListQuotaReached,
    StripeNotConfigured,
    StripeRequestRejected,
    TenantConflict,
    TenantNotFound,
    TenantAlreadyFinal,
    InvalidTaskInput,
)


# AWS error codes that mean "try again later" once botocore's own retries are
# spent; anything else is a bug or a permanent condition and propagates as is.
TRANSIENT_AWS_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


def aws_error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_network_error(error: BaseException) -> bool:
    """botocore could not reach the service or got no answer in time.

    EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
    ConnectionClosedError...: they carry no AWS error code, and each means
    "try again later" as much as a throttle does.
    """
    from botocore.exceptions import ConnectionError, HTTPClientError

    return isinstance(error, (HTTPClientError, ConnectionError))


def is_transient_aws_error(error: BaseException) -> bool:
    return aws_error_code(error) in TRANSIENT_AWS_ERROR_CODES or is_network_error(error)


@contextmanager
def aws_call(service: str) -> Iterator[None]:
    """Turn throttling, service-side and network errors into AwsServiceUnavailable.

    botocore has already retried these a few times by then; the state
    machine's longer backoff gets another go. Everything else propagates.
    """
    try:
        yield
    except Exception as error:
        if is_transient_aws_error(error):
            why = aws_error_code(error) or type(error).__name__
            raise AwsServiceUnavailable(
                f"{service} is unavailable ({why}); will retry", service=service
            ) from error
        raise
