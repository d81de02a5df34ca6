"""The tenant's own API for its subscribers: ``/me/subscribers``.

Every route takes the tenant pool's ID token; the tenant id comes from the
token's ``sub`` and from nowhere else, so no tenant can read or change
another's subscribers (a page token names its tenant and is refused for any
other). An onboarding that is not ``active`` gets 409 naming its status.
Every refusal is a 4xx with a sentence; the same sentences show on the page.
"""
import csv
import io
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from chalice import BadRequestError, ConflictError, NotFoundError, Response

from chalicelib.decisions import claims_of, read_json_object
from chalicelib.errors import TenantNotActive
from chalicelib.http_errors import PayloadTooLargeError
from chalicelib.paging import (
    ISO_INSTANT,
    decode_page_token,
    encode_page_token,
    page_size,
    plain,
    typed,
)
from chalicelib.signup import TENANT_ID
from chalicelib.subscribers import (
    InvalidSubscriber,
    NewSubscriber,
    SubscriberStore,
    check_email,
    check_name,
    subscriber_key,
    subscribers_of,
)
from chalicelib.tenants import TenantRepository

DEFAULT_PAGE = 50
MAX_PAGE = 100
MAX_IMPORT_ROWS = 1000
MAX_IMPORT_BYTES = 1024 * 1024  # 1,000 rows of the longest emails and names fit
CSV_TYPES = ("text/csv", "text/plain")


def caller_tenant(request_context: dict[str, Any]) -> str:
    """The signed-in tenant's id: the sub of its ID token, which API Gateway checked."""
    tenant_id = str(claims_of(request_context).get("sub") or "")
    if not TENANT_ID.match(tenant_id):
        raise NotFoundError("no tenant for this sign-in")
    return tenant_id


class MySubscribers:
    def __init__(self, tenants: TenantRepository, store: SubscriberStore) -> None:
        self._tenants = tenants
        self._store = store

    def listing(self, tenant_id: str, query: Mapping[str, str] | None) -> dict[str, Any]:
        """GET /me/subscribers?limit=&nextToken=: newest first."""
        query = query or {}
        unknown = sorted(set(query) - {"limit", "nextToken"})
        if unknown:
            raise BadRequestError(f"unknown query parameter(s): {', '.join(unknown)}")
        limit = page_size(query.get("limit"), DEFAULT_PAGE, MAX_PAGE)
        start = decode_subscribers_token(query["nextToken"], tenant_id) if query.get("nextToken") else None
        record = self._active(tenant_id)
        subscribers, last = self._store.page(tenant_id, limit, start)
        return {"subscribers": subscribers, "count": int(record.get("subscribers", 0)),
                "nextToken": encode_page_token(plain(last))}

    def add(self, tenant_id: str, raw_body: bytes | str | None) -> Response:
        """POST /me/subscribers {"email", "name"?}: 201 added, 200 already there."""
        body = read_json_object(raw_body, {"email", "name"}, '{"email": "…", "name": "…"}')
        subscriber = _subscriber(body.get("email"), body.get("name"))
        self._active(tenant_id)
        added = self._add_all(tenant_id, [subscriber])[subscriber.key]
        stored = self._store.get(tenant_id, subscriber.email) or {"email": subscriber.email}
        return Response(status_code=201 if added else 200,
                        body={"subscriber": stored, "added": added,
                              "count": self._count(tenant_id)})

    def remove(self, tenant_id: str, email: str) -> Response:
        """DELETE /me/subscribers/{email}: 204, or 404 when the tenant has no such subscriber.

        The path may carry the email percent-encoded or already decoded (API
        Gateway and ``chalice local`` differ): an email without its @ is still
        encoded, and is decoded once; one with its @ never is (a % is allowed
        in an email)."""
        if "@" not in email:
            email = urllib.parse.unquote(email)
        self._active(tenant_id)
        try:
            removed = self._store.remove(tenant_id, email)
        except TenantNotActive:
            raise self._not_active(tenant_id) from None
        if not removed:
            raise NotFoundError(f"you have no subscriber {email[:300]}")
        return Response(status_code=204, body="")

    def import_rows(self, tenant_id: str, raw_body: bytes | str | None,
                    content_type: str | None) -> dict[str, Any]:
        """POST /me/subscribers/import: a JSON array of {email, name?} or CSV text
        with an ``email,name`` header; each row answered added, existing or
        invalid (with the reason). Repeating it adds nothing twice."""
        rows = parse_import(raw_body, content_type)
        self._active(tenant_id)
        answers: list[dict[str, Any]] = []
        valid: list[NewSubscriber] = []
        for number, (email, name) in enumerate(rows, start=1):
            try:
                subscriber = _subscriber(email, name)
            except BadRequestError as refused:
                answers.append({"row": number, "email": email if isinstance(email, str) else None,
                                "result": "invalid", "reason": refused.args[0] if refused.args else ""})
                continue
            valid.append(subscriber)
            answers.append({"row": number, "email": subscriber.email, "key": subscriber.key})
        added = self._add_all(tenant_id, valid)
        seen: set[str] = set()
        for answer in answers:
            key = answer.pop("key", None)
            if key is None:
                continue
            answer["result"] = "added" if added[key] and key not in seen else "existing"
            seen.add(key)
        totals = {result: sum(1 for a in answers if a["result"] == result)
                  for result in ("added", "existing", "invalid")}
        return {"rows": answers, **totals, "count": self._count(tenant_id)}

    def _add_all(self, tenant_id: str, subscribers: list[NewSubscriber]) -> dict[str, bool]:
        try:
            return self._store.add_all(tenant_id, subscribers)
        except TenantNotActive:
            raise self._not_active(tenant_id) from None

    def _active(self, tenant_id: str) -> dict[str, Any]:
        record = self._tenants.get(tenant_id)
        if record is None:
            raise NotFoundError("your onboarding has not started yet; try again in a moment")
        if record.get("status") != "active":
            raise ConflictError(_not_active_message(record.get("status")))
        return record

    def _not_active(self, tenant_id: str) -> ConflictError:
        return ConflictError(_not_active_message((self._tenants.get(tenant_id) or {}).get("status")))

    def _count(self, tenant_id: str) -> int:
        return int((self._tenants.get(tenant_id) or {}).get("subscribers", 0))


def _not_active_message(status: Any) -> str:
    return (f"your onboarding is {status}: subscribers can be added once it is active"
            if status == "onboarding" else
            f"your onboarding is {status}: its subscribers can no longer be changed")


def _subscriber(email: Any, name: Any) -> NewSubscriber:
    try:
        return NewSubscriber(email=check_email(email), name=check_name(name))
    except InvalidSubscriber as refused:
        raise BadRequestError(str(refused)) from None


def parse_import(raw_body: bytes | str | None, content_type: str | None) -> list[tuple[Any, Any]]:
    """The rows of an import, as (email, name): 400 for a body that is neither
    a JSON array nor CSV with an email column, 413 above the limits."""
    if not raw_body:
        raise BadRequestError('request body is required: a JSON array of {"email", "name"} '
                              "or CSV text with an email,name header")
    if len(raw_body) > MAX_IMPORT_BYTES:
        raise PayloadTooLargeError(f"an import is at most {MAX_IMPORT_BYTES} bytes")
    text = raw_body.decode("utf-8", "replace") if isinstance(raw_body, bytes) else raw_body
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in CSV_TYPES or (kind != "application/json" and not text.lstrip().startswith("[")):
        rows = _csv_rows(text)
    else:
        rows = _json_rows(text)
    if len(rows) > MAX_IMPORT_ROWS:
        raise PayloadTooLargeError(
            f"an import is at most {MAX_IMPORT_ROWS} rows; this one has {len(rows)}: split it")
    return rows


def _json_rows(text: str) -> list[tuple[Any, Any]]:
    try:
        rows = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequestError("the import is not valid JSON") from None
    if not isinstance(rows, list):
        raise BadRequestError('a JSON import is an array of {"email", "name"} objects')
    return [(row.get("email"), row.get("name")) if isinstance(row, dict) else (None, None)
            for row in rows]


def _csv_rows(text: str) -> list[tuple[Any, Any]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        lines = [line for line in reader if any(cell.strip() for cell in line)]
    except csv.Error as error:
        raise BadRequestError(f"the import is not valid CSV: {error}") from None
    if not lines:
        raise BadRequestError("the CSV import is empty: it needs an email,name header")
    header = [cell.strip().lower() for cell in lines[0]]
    if "email" not in header:
        raise BadRequestError("the CSV import needs a header row naming its columns: email,name")
    email_at = header.index("email")
    name_at = header.index("name") if "name" in header else None
    return [(line[email_at].strip() if email_at < len(line) else "",
             line[name_at] if name_at is not None and name_at < len(line) else None)
            for line in lines[1:]]


def decode_subscribers_token(token: str, tenant_id: str) -> dict[str, Any]:
    """Where a page of the tenant's subscribers begins: a key of the
    bySubscribedAt index, of this tenant's partition (no other's)."""
    key = decode_page_token(
        token, {"pk", "sk", "subscriberOf", "subscribedAt"},
        lambda key: key["pk"] == subscribers_of(tenant_id) and key["subscriberOf"] == tenant_id
        and bool(key["sk"]) and key["sk"] == subscriber_key(key["sk"])
        and bool(ISO_INSTANT.match(key["subscribedAt"])))
    return typed(key) or {}
