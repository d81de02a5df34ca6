"""Cognito's sign-up triggers: the door check before, the new tenant after.

Pre sign-up refuses what no tenant name or email should be before Cognito
stores it (the message reaches the sign-up client); post confirmation reads
the confirmed user into the tenant it onboards.
"""
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from chalicelib.errors import InvalidSignupEvent, SignUpRefused
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from chalicelib.tenants import NewTenant

logger = get_logger(__name__)

# Password resets fire the same trigger as PostConfirmation_ConfirmForgotPassword;
# only a confirmed sign-up is a new tenant.
CONFIRM_SIGN_UP = "PostConfirmation_ConfirmSignUp"
# A Cognito sub is a UUID; the tenant id doubles as the execution name, whose
# allowed characters are narrower than a Cognito username's.
TENANT_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")


MAX_NAME_LENGTH = 128
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
# Embeddings, overrides and isolates: they reorder what an admin reads.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unsafe_characters(text: str) -> list[str]:
    """Control characters and bidirectional controls in ``text``, as U+XXXX."""
    return sorted({f"U+{ord(c):04X}" for c in text
                   if unicodedata.category(c) == "Cc" or c in BIDI_CONTROLS})


def check_sign_up(event: dict[str, Any]) -> dict[str, Any]:
    """Refuse a name or an email no tenant should have; the event back otherwise.

    Ordinary international names (accents, ampersands, dashes, CJK) pass
    unchanged: only what is invisible or rewrites what an admin sees is refused.
    """
    request = event.get("request") if isinstance(event, dict) else None
    attributes = (request or {}).get("userAttributes") or {}
    name = attributes.get("name")
    email = attributes.get("email") or ""
    if not isinstance(name, str) or not name.strip():
        raise SignUpRefused("Company name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise SignUpRefused(f"Company name must be at most {MAX_NAME_LENGTH} characters")
    bad = unsafe_characters(name)
    if bad:
        raise SignUpRefused(
            "Company name must not contain control or text-direction characters "
            f"({', '.join(bad)})"
        )
    if len(email) > MAX_EMAIL_LENGTH:
        raise SignUpRefused(f"Email must be at most {MAX_EMAIL_LENGTH} characters")
    if unsafe_characters(email):
        raise SignUpRefused("Email must not contain control or text-direction characters")
    return event


def tenant_from_confirmation(event: dict[str, Any]) -> "NewTenant | None":
    """The new tenant, or None when this event is not a confirmed sign-up."""
    # here, not at the top: the pre sign-up trigger shares this module and
    # needs no AWS SDK, whose import is most of a cold start at a small size
    from chalicelib.tenants import NewTenant

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
