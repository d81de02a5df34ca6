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

# --- what no one should read without seeing it -----------------------------------------
# Controls (Cc), format characters (Cf: zero-width characters, direction marks,
# embeddings, overrides and isolates, U+FEFF, the interlinear annotation
# controls U+FFF9-FFFB, the tags), lone surrogates (Cs) and the line and
# paragraph separators (Zl, Zp).
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# And the rest of Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt),
# which render as nothing though their category says otherwise: the combining
# grapheme joiner, the Hangul fillers, Khmer's inherent vowels, and plane 14's
# tags and reserved ignorables (U+E0000-E0FFF; its variation selectors apart).
INVISIBLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x3164, 0x3164),
             (0xFFA0, 0xFFA0), (0xE0000, 0xE0FFF))
VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF), (0x180B, 0x180D), (0x180F, 0x180F))
ZWNJ, ZWJ = "\u200c", "\u200d"
VIRAMA = 9  # the canonical combining class of a virama (halant)
# Scripts whose letters join (cursive): a ZWNJ between two of their letters
# keeps them apart, as Persian writes می‌خواهم (RFC 5892's CONTEXTJ rule, by script).
JOINING_SCRIPTS = ("ARABIC", "SYRIAC", "NKO", "MONGOLIAN", "MANDAIC", "ADLAM", "HANIFI ROHINGYA",
                   "PHAGS-PA", "MANICHAEAN", "PSALTER PAHLAVI", "SOGDIAN", "OLD UYGHUR")
# Marks stacked on one character: Hebrew fully pointed and Tibetan stacks reach 3
# or 4; "Zalgo" text, which spills over the lines around it, uses dozens.
MAX_COMBINING_RUN = 4


def unsafe_characters(text: str) -> list[str]:
    """What in ``text`` is invisible, a control or a direction control, as U+XXXX.

    Two invisible characters pass where a script needs them (Unicode's and
    IDNA's CONTEXTJ rules): a joiner (ZWJ) or non-joiner (ZWNJ) right after a
    virama, as in Sinhala ශ්‍රී or Malayalam's chillu letters, and a ZWNJ
    between two letters of a joining script, as in Persian. One variation
    selector right after a visible character passes too (❤️ is U+2764 U+FE0F).
    A ZWJ between emoji does not: it makes one picture of several.
    """
    return sorted({f"U+{ord(c):04X}" for i, c in enumerate(text) if not _allowed_at(text, i)})


def _allowed_at(text: str, i: int) -> bool:
    c, code = text[i], ord(text[i])
    if c in (ZWJ, ZWNJ):
        before = text[i - 1] if i > 0 else ""
        if before and unicodedata.combining(before) == VIRAMA:
            return True
        return c == ZWNJ and _joining_letter(text, i, -1) and _joining_letter(text, i, 1)
    if any(low <= code <= high for low, high in VARIATION_SELECTORS):
        before = text[i - 1] if i > 0 else ""
        return bool(before) and not unicodedata.category(before).startswith("M") and _allowed_alone(
            before)
    return _allowed_alone(c)


def _allowed_alone(c: str) -> bool:
    code = ord(c)
    return unicodedata.category(c) not in UNSAFE_CATEGORIES and not any(
        low <= code <= high for low, high in INVISIBLE)


def _joining_letter(text: str, i: int, step: int) -> bool:
    """Is the nearest character before (step -1) or after (+1) position ``i``,
    marks skipped, a letter of a joining script?"""
    i += step
    while 0 <= i < len(text) and unicodedata.category(text[i]) == "Mn":
        i += step
    if not 0 <= i < len(text) or not unicodedata.category(text[i]).startswith("L"):
        return False
    return unicodedata.name(text[i], "").startswith(JOINING_SCRIPTS)


def longest_mark_run(text: str) -> int:
    """The most combining marks (Mn, Me) in a row, once composed (NFC): é is one letter."""
    longest = run = 0
    for c in unicodedata.normalize("NFC", text):
        run = run + 1 if unicodedata.category(c) in ("Mn", "Me") else 0
        longest = max(longest, run)
    return longest


def unsafe_text(subject: str, text: str) -> str | None:
    """Why ``text`` may not be shown to a person as is, as a sentence about
    ``subject`` ("Company name", "reason"); None when it may."""
    bad = unsafe_characters(text)
    if bad:
        return (f"{subject} must not contain invisible, control or text-direction characters "
                f"({', '.join(bad)})")
    if longest_mark_run(text) > MAX_COMBINING_RUN:
        return f"{subject} must not stack more than {MAX_COMBINING_RUN} accents or marks on one letter"
    return None


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
    refused = unsafe_text("Company name", name)
    if refused:
        raise SignUpRefused(refused)
    if len(email) > MAX_EMAIL_LENGTH:
        raise SignUpRefused(f"Email must be at most {MAX_EMAIL_LENGTH} characters")
    refused = unsafe_text("Email", email)
    if refused:
        raise SignUpRefused(refused)
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
