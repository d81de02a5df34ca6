"""Billing for tenants: one interface, and a provider behind it per stage.

``BillingProvider`` is what onboarding and its releases need of billing: a
customer made once per onboarding attempt, deleted when the tenant leaves
(the way SBT shapes its billing interface). ``StripeBilling`` implements it,
and so does ``NoBilling`` for a stage without Stripe; dependencies.py picks.

``stripe`` is imported only inside the functions that talk to Stripe: it
costs more to import than boto3, and most Lambdas of this app never call it.
The API key is read from Secrets Manager on first use and kept for the
container's life; it never appears in a log line, an error or an event.

Every Stripe request keeps to the invocation's time budget (budget.py): it
gets only as many retries as fit in the time left (stripe-python takes
``max_network_retries`` per request), and each attempt's connect and read
timeouts are cut to what is left by the HTTP adapter of ``budgeted_session``,
which refuses an attempt that cannot finish in time (StripeUnavailable).
"""
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import budget
from chalicelib.errors import (
    StripeAuthenticationFailed,
    StripeNotConfigured,
    StripeRequestRejected,
    StripeUnavailable,
    aws_call,
)
from chalicelib.logs import get_logger
from chalicelib.tenants import NewTenant

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from requests import Session
    from stripe import StripeClient

logger = get_logger(__name__)


class BillingProvider(Protocol):
    def create_customer(self, tenant: NewTenant, attempt: int = 1) -> str:
        """The tenant's customer id: made once per attempt, however often asked."""
        ...

    def delete_customer(self, customer_id: str, tenant_id: str) -> bool:
        """Delete it; False when the provider no longer has it."""
        ...


class NoBilling:
    """A stage without billing: the workflow never asks for a customer (its
    Stripe Configured? choice), and a tenant holds none to give back."""

    def create_customer(self, tenant: NewTenant, attempt: int = 1) -> str:
        raise StripeNotConfigured("Stripe is not configured for this stage (no STRIPE_SECRET_ID)")

    def delete_customer(self, customer_id: str, tenant_id: str) -> bool:
        logger.warning("the record names Stripe customer %s, but this stage has no Stripe; "
                       "nothing to delete", customer_id, extra={"tenantId": tenant_id})
        return False


HTTP_TIMEOUT = (3.0, 10.0)  # connect, read (seconds); stripe-python defaults to 80


def budgeted_session(timeout: tuple[float, float]) -> "Session":
    """A requests session whose every attempt keeps to the invocation's budget:
    ``timeout`` (connect, read) as sized for it, cut to the time left, or the
    attempt refused when not even a connect and a short read fit."""
    import requests
    from requests.adapters import HTTPAdapter

    class BudgetedAdapter(HTTPAdapter):
        def send(self, request: Any, stream: bool = False, timeout: Any = None,
                 verify: Any = True, cert: Any = None, proxies: Any = None) -> Any:
            return super().send(request, stream=stream, timeout=attempt_timeout(), verify=verify,
                                cert=cert, proxies=proxies)

    def attempt_timeout() -> tuple[float, float]:
        invocation = budget.current()
        if invocation is None:
            return timeout
        connect, read = budget.sized_now(*timeout)
        remaining = invocation.remaining()
        attempt = budget.attempt_timeouts(remaining, connect, read)
        if attempt is None:
            raise StripeUnavailable(
                f"Stripe is unavailable: another attempt does not fit in the {remaining:.1f} s "
                "left of this invocation; will retry")
        return attempt

    session = requests.Session()
    adapter = BudgetedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def customer_idempotency_key(tenant_id: str, attempt: int = 1) -> str:
    """The same onboarding attempt always asks Stripe for the same customer.

    A retry after the customer was released (deleted) asks for a new one:
    with the first key, Stripe would replay the deleted customer for 24 hours.
    """
    suffix = f"-attempt-{attempt}" if attempt > 1 else ""
    return f"tenant-onboarding-customer-{tenant_id}{suffix}"


class StripeKeyProvider:
    """Reads the Stripe secret key from Secrets Manager once, then caches it."""

    def __init__(self, secrets_client: "SecretsManagerClient", secret_id: str) -> None:
        self._secrets = secrets_client
        self._secret_id = secret_id
        self._key: str | None = None
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop the cached key: it was rotated, read the secret again."""
        with self._lock:
            self._key = None

    def __call__(self) -> str:
        with self._lock:
            if self._key is None:
                with aws_call("Secrets Manager"):
                    value = self._secrets.get_secret_value(SecretId=self._secret_id)
                key = (value.get("SecretString") or "").strip()
                if not key:
                    raise StripeAuthenticationFailed(
                        f"the Stripe secret {self._secret_id} is empty"
                    )
                self._key = key
            return self._key


class StripeBilling:
    """Creates Stripe customers; one per tenant however often it is asked."""

    def __init__(
        self,
        api_key: Callable[[], str],
        api_base: str | None = None,
        max_network_retries: int = 2,
        http_timeout: tuple[float, float] = HTTP_TIMEOUT,
    ) -> None:
        self._api_key = api_key
        self._api_base = api_base
        self._http_timeout = http_timeout
        self._max_network_retries = max_network_retries
        self._client: StripeClient | None = None
        self._lock = threading.Lock()

    def stripe_client(self) -> "StripeClient":
        """One client per container: it keeps its HTTP connections warm."""
        import stripe  # only the Stripe path pays for this import

        with self._lock:
            if self._client is None:
                self._client = stripe.StripeClient(
                    self._api_key(),
                    base_addresses={"api": self._api_base} if self._api_base else None,
                    max_network_retries=self._max_network_retries,
                    # within the invocation's budget: a hung call must fail
                    # here (and be retried) rather than kill the Lambda
                    http_client=stripe.RequestsClient(
                        timeout=self._http_timeout,
                        session=budgeted_session(self._http_timeout)),
                )
            return self._client

    def create_customer(self, tenant: NewTenant, attempt: int = 1) -> str:
        customer = self._call(lambda client, retries: client.v1.customers.create(
            params={
                "email": tenant.email,
                "name": tenant.name,
                "metadata": {"tenantId": tenant.tenant_id},
            },
            options={"idempotency_key": customer_idempotency_key(tenant.tenant_id, attempt),
                     "max_network_retries": retries},
        ), "create the customer")
        logger.info(
            "created Stripe customer %s", customer.id, extra={"tenantId": tenant.tenant_id}
        )
        return str(customer.id)

    def delete_customer(self, customer_id: str, tenant_id: str) -> bool:
        """Delete it; False when Stripe no longer has it (deleted by hand)."""
        try:
            self._call(lambda client, retries: client.v1.customers.delete(
                customer_id, options={"max_network_retries": retries}), "delete the customer")
        except StripeRequestRejected as error:
            if error.missing:
                logger.info("Stripe customer %s was already gone", customer_id,
                            extra={"tenantId": tenant_id})
                return False
            raise
        logger.info("deleted Stripe customer %s", customer_id, extra={"tenantId": tenant_id})
        return True

    def _retries(self) -> int:
        """This request's retries: as many as fit in the invocation's time left."""
        invocation = budget.current()
        if invocation is None:
            return self._max_network_retries
        connect, read = budget.sized_now(*self._http_timeout)
        return budget.stripe_retries(invocation.remaining(), connect, read, self._max_network_retries)

    def _call(self, request: Callable[[Any, int], Any], what: str) -> Any:
        """One Stripe request, its errors named as the state machine retries them."""
        import stripe

        try:
            try:
                return request(self.stripe_client(), self._retries())
            except stripe.AuthenticationError:
                # Maybe the key was rotated since this container cached it.
                forget = getattr(self._api_key, "forget", None)
                if forget is None:
                    raise
                forget()
                with self._lock:
                    self._client = None
                return request(self.stripe_client(), self._retries())
        except stripe.AuthenticationError:
            # The message Stripe sends may echo part of the key: drop it.
            raise StripeAuthenticationFailed(
                "Stripe rejected the API key (authentication failed); "
                "check the Stripe secret"
            ) from None
        except stripe.IdempotencyError:
            # the first request with this key is still in flight: retry later
            raise StripeUnavailable(
                "Stripe is still processing an earlier attempt; will retry"
            ) from None
        except (stripe.RateLimitError, stripe.APIConnectionError) as error:
            if isinstance(error.__cause__, StripeUnavailable):  # out of time (budgeted_session)
                raise error.__cause__ from None
            raise StripeUnavailable(
                f"Stripe is unavailable ({type(error).__name__}); will retry"
            ) from None
        except stripe.APIError as error:
            raise StripeUnavailable(
                f"Stripe failed with HTTP {error.http_status}; will retry"
            ) from None
        except stripe.StripeError as error:
            raise StripeRequestRejected(
                f"Stripe refused to {what} "
                f"(HTTP {error.http_status}, code {error.code or 'none'})",
                code=error.code, status=error.http_status or 0,
            ) from None
