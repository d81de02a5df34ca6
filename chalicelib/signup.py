"""Cognito's post-confirmation event, read into the tenant it confirms."""
import re
from typing import Any, Dict, Optional

from chalicelib.tenants import NewTenant
from chalicelib.logs import get_logger

logger = get_logger(__name__)

# Password resets fire the same trigger as PostConfirmation_ConfirmForgotPassword;
# only a confirmed sign-up is a new tenant.
CONFIRM_SIGN_UP = "PostConfirmation_ConfirmSignUp"
# A Cognito sub is a UUID; the tenant id doubles as the execution name, whose
# allowed characters are narrower than a Cognito username's.
TENANT_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")


class InvalidSignupEvent(ValueError):
    """The event is a sign-up confirmation but lacks what a tenant needs."""


def tenant_from_confirmation(event: Dict[str, Any]) -> Optional[NewTenant]:
    """The new tenant, or None when this event is not a confirmed sign-up."""
    source = event.get("triggerSource") if isinstance(event, dict) else None
    if source != CONFIRM_SIGN_UP:
        logger.info("ignoring Cognito trigger %s: not a sign-up confirmation", source)
        return None
    request = event.get("request")
    attributes = request.get("userAttributes") if isinstance(request, dict) else None
    if not isinstance(attributes, dict):
        raise InvalidSignupEvent("the event has no request.userAttributes")

    sub = _text(attributes.get("sub"))
    email = _text(attributes.get("email"))
    if not sub or not TENANT_ID.match(sub):
        raise InvalidSignupEvent("the user has no usable sub attribute")
    if not email:
        raise InvalidSignupEvent(f"user {sub} has no email attribute")
    name = _text(attributes.get("name"))
    if not name:
        logger.warning("user %s has no name attribute; using the email address", sub)
        name = email
    return NewTenant(tenant_id=sub, email=email, name=name)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
