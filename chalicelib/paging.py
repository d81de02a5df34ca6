"""Pages of a listing over the API: ``limit`` and an opaque ``nextToken``.

The token is DynamoDB's LastEvaluatedKey (plain strings), as URL-safe
base64 of its JSON. Each listing checks that a token it is given has the
shape of its own keys, and of the caller's, before DynamoDB sees it: a
forged or borrowed token is a 400, never another partition's page.
"""
import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from chalice import BadRequestError

ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.]{8,12}Z$")
FORGED = "nextToken is not one this API returned"


def page_size(value: str | None, default: int, maximum: int) -> int:
    """``limit``: a whole number from 1 to ``maximum``, ``default`` when absent; 400 otherwise."""
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= maximum:
        raise BadRequestError(f"limit must be a whole number from 1 to {maximum}")
    return int(value)


def encode_page_token(key: dict[str, str] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fields: set[str],
                      valid: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """The key a token names, when it has exactly ``fields`` (strings) and
    ``valid`` accepts it; 400 otherwise."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if (not isinstance(key, dict) or set(key) != fields
            or not all(isinstance(v, str) for v in key.values()) or not valid(key)):
        raise BadRequestError(FORGED)
    return key


def typed(key: dict[str, Any] | None) -> dict[str, Any] | None:
    """A plain key as DynamoDB's typed one, and back (``plain``)."""
    return {name: {"S": value} for name, value in key.items()} if key else None


def plain(key: dict[str, Any] | None) -> dict[str, str] | None:
    return {name: value["S"] for name, value in key.items()} if key else None
