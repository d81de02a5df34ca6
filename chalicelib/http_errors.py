"""Errors as HTTP answers, in one place.

Every route of app.py is wrapped by ``answers``. Routes raise Chalice's
view errors (4xx with a message) themselves; what reaches here is an outage
of something we call: AWS or Stripe unreachable, timing out, throttling or
failing on their side after the clients' own retries. The caller gets 503
with Retry-After, never a 500 or a stack trace.
"""
import functools
from collections.abc import Callable
from typing import Any

from chalice import ChaliceViewError, Response

from chalicelib.errors import AwsServiceUnavailable, StripeUnavailable
from chalicelib.logs import get_logger

logger = get_logger(__name__)

RETRY_AFTER_SECONDS = 5


class PayloadTooLargeError(ChaliceViewError):
    """413: a request body over the route's limit."""

    STATUS_CODE = 413
UNAVAILABLE = (AwsServiceUnavailable, StripeUnavailable)


def service_unavailable(error: Exception) -> Response:
    service = getattr(error, "service", None) or "a service this API depends on"
    return Response(
        body={
            "Code": "ServiceUnavailableError",
            "Message": f"{service} is unavailable right now; try again in "
                       f"{RETRY_AFTER_SECONDS} seconds",
        },
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Content-Type": "application/json"},
    )


def answers(view: Callable[..., Any]) -> Callable[..., Any]:
    """A route whose outages answer 503 with Retry-After."""

    @functools.wraps(view)
    def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except UNAVAILABLE as error:
            logger.warning("answering 503: %s", error, extra={"tenantId": kwargs.get("tenant_id")})
            return service_unavailable(error)

    return answered
