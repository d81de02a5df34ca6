"""Named errors raised by the task Lambdas.

The state machine retries and catches on these class names (Lambda reports
an unhandled exception's class name as the error type), so renaming one
means changing ``statemachine.json`` too; a test checks that every name the
definition mentions exists here.

Transient errors are retried with backoff; permanent ones go straight to the
failure path.
"""
from contextlib import contextmanager
from typing import Iterator


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


TRANSIENT_ERRORS = (
    StripeUnavailable,
    AwsServiceUnavailable,
    EventPublishFailed,
    ContactListBusy,
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


def aws_error_code(error: Exception) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def is_network_error(error: Exception) -> bool:
    """botocore could not reach the service or got no answer in time.

    EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
    ConnectionClosedError...: they carry no AWS error code, and each means
    "try again later" as much as a throttle does.
    """
    from botocore.exceptions import ConnectionError, HTTPClientError

    return isinstance(error, (HTTPClientError, ConnectionError))


def is_transient_aws_error(error: Exception) -> bool:
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
