"""What admins do with tenants over the API: list, show, decide by id.

Routes in app.py hand the request's pieces here and get a JSON-able answer
or a Chalice view error with a message an admin can act on. The task token
stays inside: no answer ever contains it.
"""
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from chalice import BadRequestError, ConflictError, NotFoundError, Response

from chalicelib.clock import plus_seconds
from chalicelib.decisions import claims_of, read_json_object, read_reason, read_status_and_reason
from chalicelib.errors import (
    DecisionNotDelivered,
    NotAwaitingDecision,
    NotOffboardable,
    NotRetryable,
    TenantNotFound,
)
from chalicelib.logs import get_logger
from chalicelib.paging import ISO_INSTANT, decode_page_token, encode_page_token, page_size
from chalicelib.signup import TENANT_ID, unsafe_text
from chalicelib.tenants import (
    RETRYABLE,
    STATUSES,
    NewTenant,
    TenantRepository,
    email_key,
)
from chalicelib.workflow import OffboardingWorkflow, OnboardingWorkflow

logger = get_logger(__name__)
DEFAULT_PAGE = 50
MAX_PAGE = 100
LISTED = ("tenantId", "name", "email", "status", "createdAt", "updatedAt")
# How a status's listing is ordered, newest first: by signing up (the byStatus
# index's own order) or by the last change (that status's tenants read from
# the index, then sorted: see sorted_by_update).
SORTS = ("created", "updated")
MATCHES = ("prefix", "exact")
MAX_EMAIL_LENGTH = 254
SEARCH_ONLY = {"email", "match", "tenantId"}
LISTING_ONLY = {"status", "sort"}


# Longer than the API function may run (its timeout, .chalice/config.json):
# a claim outlives the request that took it, never the other way round.
CLAIM_LEASE_SECONDS = 60


def tenant_summary(record: dict[str, Any]) -> dict[str, Any]:
    summary = {"tenantId": record["pk"], **{k: record.get(k) for k in LISTED[1:]}}
    if record.get("status") == "onboarding" and record.get("decideBy"):
        summary["decideBy"] = record["decideBy"]
    return summary


def tenant_detail(record: dict[str, Any]) -> dict[str, Any]:
    detail = tenant_summary(record)
    for key in ("stripeCustomerId", "list", "listMode", "topic", "sesTenant", "failureReason",
                "decision", "released",
                "releaseFailure", "offboarding", "offboardingFailure", "offboardedAt",
                "offboardedBy", "offboardReason", "retries"):
        if record.get(key) is not None:
            detail[key] = _plain(record[key])
    detail["subscribers"] = int(record.get("subscribers", 0))
    detail["attempts"] = int(record.get("attempts", 1))
    pending = record.get("pendingDecision")
    if pending and record.get("status") == "onboarding":
        detail["awaitingDecisionSince"] = pending.get("requestedAt")
    return detail


def _plain(value: Any) -> Any:
    """DynamoDB's numbers (Decimal) as the JSON numbers they are: 2, not 2.0."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def tenant_view(tenants: TenantRepository, request_context: dict[str, Any]) -> dict[str, Any]:
    """The signed-in tenant's own record, as a tenant may see it: never the task
    token, the admin's identity or the Stripe id."""
    tenant_id = claims_of(request_context).get("sub") or ""
    if not TENANT_ID.match(tenant_id):
        raise NotFoundError("no tenant for this sign-in")
    record = tenants.get(tenant_id)
    if record is None:
        raise NotFoundError("your onboarding has not started yet; try again in a moment")
    view = {"tenantId": tenant_id, **{k: record.get(k) for k in ("status", "name", "email",
                                                                   "createdAt")}}
    if record.get("status") == "onboarding" and record.get("decideBy"):
        view["decideBy"] = record["decideBy"]
    if record.get("status") == "rejected":
        view["reason"] = (record.get("decision") or {}).get("reason")
    return view


def decode_email_token(token: str) -> dict[str, str]:
    """Where a page of the byEmail search begins: a key of that index, of a tenant."""
    return decode_page_token(
        token, {"pk", "sk", "emailKey"},
        lambda key: key["sk"] == "tenant" and bool(TENANT_ID.match(key["pk"]))
        and 0 < len(key["emailKey"]) <= MAX_EMAIL_LENGTH)


def decode_updated_token(token: str) -> dict[str, str]:
    """Where a page of a listing by last change begins: after this tenant."""
    return decode_page_token(
        token, {"pk", "status", "updatedAt"},
        lambda key: bool(TENANT_ID.match(key["pk"])) and key["status"] in STATUSES
        and bool(ISO_INSTANT.match(key["updatedAt"])))


def sorted_by_update(items: list[dict[str, Any]], limit: int, after: dict[str, str] | None
                     ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    """A page of ``items`` ordered by updatedAt, newest first (ties: by id), that
    begins after the tenant ``after`` names; and the key to ask for the next.

    Keyed, not by offset: a tenant that moves while an admin pages is neither
    shown twice nor makes another one skipped."""
    def order(item: dict[str, Any]) -> tuple[str, str]:
        return (str(item.get("updatedAt") or item.get("createdAt") or ""), str(item["pk"]))

    ordered = sorted(items, key=order, reverse=True)
    if after:
        boundary = (after["updatedAt"], after["pk"])
        ordered = [item for item in ordered if order(item) < boundary]
    page = ordered[:limit]
    if len(ordered) <= limit:
        return page, None
    last = page[-1]
    updated_at, tenant_id = order(last)
    return page, {"pk": tenant_id, "status": str(last["status"]), "updatedAt": updated_at}


def read_email_search(value: str) -> str:
    """The email (or its beginning) to look for, as the index keys it; 400 otherwise."""
    key = email_key(value)
    if not key:
        raise BadRequestError("email must not be empty: give an email address or its beginning")
    if len(key) > MAX_EMAIL_LENGTH:
        raise BadRequestError(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    if any(c.isspace() for c in key):
        raise BadRequestError("email must not contain spaces")
    refused = unsafe_text("email", key)
    if refused:
        raise BadRequestError(refused)
    return key


def decode_listing_token(token: str) -> dict[str, str]:
    """Where a page of the byStatus listing begins: a key of that index, of a tenant."""
    return decode_page_token(
        token, {"pk", "sk", "status", "createdAt"},
        lambda key: key["sk"] == "tenant" and bool(TENANT_ID.match(key["pk"]))
        and bool(ISO_INSTANT.match(key["createdAt"])))


class TenantAdmin:
    def __init__(self, tenants: TenantRepository, workflow: OnboardingWorkflow) -> None:
        self._tenants = tenants
        self._workflow = workflow

    def list(self, query: Mapping[str, str] | None) -> dict[str, Any]:
        """One status's tenants (``status``, ``sort``), or a search in every
        status by ``email`` (``match``: prefix or exact) or by ``tenantId``."""
        query = query or {}
        unknown = sorted(set(query) - SEARCH_ONLY - LISTING_ONLY - {"nextToken", "limit"})
        if unknown:
            raise BadRequestError(f"unknown query parameter(s): {', '.join(unknown)}")
        limit = page_size(query.get("limit"), DEFAULT_PAGE, MAX_PAGE)
        if SEARCH_ONLY & set(query):
            mixed = sorted(LISTING_ONLY & set(query))
            if mixed:
                raise BadRequestError(
                    f"a search looks in every status: leave out {', '.join(mixed)}")
            return self._search(query, limit)
        status = query.get("status", "onboarding")
        if status not in STATUSES:
            raise BadRequestError(f"status must be one of {', '.join(STATUSES)}")
        sort = query.get("sort", "created")
        if sort not in SORTS:
            raise BadRequestError(f"sort must be one of {', '.join(SORTS)}")
        token = query.get("nextToken")
        if sort == "updated":
            after = decode_updated_token(token) if token else None
            if after and after["status"] != status:
                raise BadRequestError("nextToken belongs to a listing of another status")
            items, last = sorted_by_update(self._tenants.all_in_status(status), limit, after)
        else:
            start = decode_listing_token(token) if token else None
            if start and start["status"] != status:
                raise BadRequestError("nextToken belongs to a listing of another status")
            items, last = self._tenants.list_by_status(status, limit, start)
        return {
            "status": status,
            "sort": sort,
            "tenants": [tenant_summary(item) for item in items],
            "nextToken": encode_page_token(last),
        }

    def _search(self, query: Mapping[str, str], limit: int) -> dict[str, Any]:
        if "tenantId" in query:
            if "email" in query or "match" in query:
                raise BadRequestError("search by email or by tenantId, not both")
            if "nextToken" in query:
                raise BadRequestError("a search by tenantId has one page: leave out nextToken")
            tenant_id = query["tenantId"].strip()
            if not TENANT_ID.match(tenant_id):
                raise BadRequestError(
                    "tenantId must be a tenant id: letters, digits and dashes, "
                    "like 0b6c8a52-3f0e-4d61-9a43-2f7c1e5d9b10")
            record = self._tenants.get(tenant_id)
            found = [tenant_summary(record)] if record and record.get("sk") == "tenant" else []
            return {"tenantId": tenant_id, "tenants": found, "nextToken": None}
        if "email" not in query:
            raise BadRequestError("match needs an email to match")
        key = read_email_search(query["email"])
        match = query.get("match", "prefix")
        if match not in MATCHES:
            raise BadRequestError(f"match must be one of {', '.join(MATCHES)}")
        start = decode_email_token(query["nextToken"]) if query.get("nextToken") else None
        if start and not (start["emailKey"] == key if match == "exact"
                          else start["emailKey"].startswith(key)):
            raise BadRequestError("nextToken belongs to another search")
        items, last = self._tenants.find_by_email(key, match == "exact", limit, start)
        return {
            "email": key,
            "match": match,
            "tenants": [tenant_summary(item) for item in items],
            "nextToken": encode_page_token(last),
        }

    def counts(self) -> dict[str, Any]:
        """How many tenants each status holds: a COUNT query of the byStatus
        index a status, so no counter can drift from the records."""
        return {"counts": {status: self._tenants.count_by_status(status) for status in STATUSES}}

    def show(self, tenant_id: str) -> dict[str, Any]:
        _require_tenant_id(tenant_id)
        return tenant_detail(self._existing(tenant_id))

    def decide(
        self, tenant_id: str, raw_body: bytes | str | None, decided_by: str, decided_at: str
    ) -> dict[str, Any]:
        _require_tenant_id(tenant_id)
        status, reason = parse_decision_body(raw_body)
        claim = {"status": status, "decidedBy": decided_by, "claimedAt": decided_at,
                 "claimId": str(uuid.uuid4())}
        try:
            pending = self._tenants.claim_decision(
                tenant_id, claim, plus_seconds(decided_at, -CLAIM_LEASE_SECONDS)
            )
        except NotAwaitingDecision as refused:
            raise ConflictError(str(refused)) from None
        except TenantNotFound:
            raise NotFoundError(f"no tenant {tenant_id}") from None
        if pending.get("decideBy") and decided_at >= pending["decideBy"]:
            # Step Functions may not have timed the task out yet; the answer
            # must not depend on who gets there first
            self._release(tenant_id, claim["claimId"])
            raise ConflictError(
                f"tenant {tenant_id} is no longer awaiting a decision: its approval window "
                f"ended at {pending['decideBy']}"
            )
        decision = {
            "status": status, "reason": reason, "decidedAt": decided_at, "decidedBy": decided_by,
        }
        try:
            self._workflow.send_decision(pending["taskToken"], decision)
        except DecisionNotDelivered as refused:
            # that token is spent (timed out, or replaced by a retried wait):
            # Step Functions already rules out a second delivery, so free the claim
            self._release(tenant_id, claim["claimId"])
            raise ConflictError(
                f"tenant {tenant_id} is no longer awaiting a decision: {refused}"
            ) from None
        except Exception:
            self._release(tenant_id, claim["claimId"])  # let an admin try again
            raise
        return {
            "message": f"Tenant onboarding {status} successfully",
            "status": status,
            "tenantId": tenant_id,
            "decidedBy": decided_by,
            "decidedAt": decided_at,
        }

    def retry(self, tenant_id: str, retried_by: str, now: str) -> dict[str, Any]:
        """Onboard a failed or timed-out tenant again, as a new attempt.

        What the first attempt made (record, Stripe customer, contact list) is
        found and reused by the steps; a new wait asks for approval again.
        """
        _require_tenant_id(tenant_id)
        record = self._existing(tenant_id)
        if record.get("status") not in RETRYABLE:
            raise ConflictError(str(NotRetryable(tenant_id, record.get("status"))))
        attempt = int(record.get("attempts", 1)) + 1
        if self._workflow.execution_status(tenant_id, attempt - 1) == "RUNNING":
            # its last step may still be retrying: a new attempt would race it
            raise ConflictError(
                f"tenant {tenant_id} is {record.get('status')}, but its attempt {attempt - 1} "
                "is still finishing; try again in a minute")
        try:
            self._tenants.begin_retry(tenant_id, record, attempt, retried_by, now)
        except NotRetryable as refused:
            raise ConflictError(str(refused)) from None
        tenant = NewTenant(tenant_id, record["email"], record["name"])
        try:
            self._workflow.start(tenant, attempt)
        except Exception:
            try:
                self._tenants.undo_retry(tenant_id, record, attempt)
            except Exception as error:  # the reconciler fails it after its grace period
                logger.warning("could not undo the retry: %s", error, extra={"tenantId": tenant_id})
            raise
        logger.info("retrying onboarding as attempt %s", attempt, extra={"tenantId": tenant_id})
        return {"tenantId": tenant_id, "status": "onboarding", "attempt": attempt,
                "retriedBy": retried_by, "retriedAt": now}

    def offboard(
        self, tenant_id: str, raw_body: bytes | str | None, requested_by: str, now: str,
        offboarding: OffboardingWorkflow,
    ) -> Response:
        """Start offboarding a tenant that is active (or purge one that did not stay)."""
        _require_tenant_id(tenant_id)
        body = read_json_object(raw_body, {"reason"}, '{"reason": "why the tenant leaves"}')
        reason = read_reason(body.get("reason"))
        if not reason:
            raise BadRequestError("reason is required: say why the tenant is offboarded")
        record = self._existing(tenant_id)
        attempt = int((record.get("offboarding") or {}).get("attempt", 0)) + 1
        request = {"requestedBy": requested_by, "requestedAt": now, "reason": reason,
                   "attempt": attempt}
        try:
            self._tenants.begin_offboarding(tenant_id, record, request)
        except NotOffboardable as refused:
            raise ConflictError(str(refused)) from None
        try:
            offboarding.start(NewTenant(tenant_id, record["email"], record["name"]), attempt)
        except Exception:
            self._tenants.fail_offboarding(tenant_id, "its offboarding could not start", now)
            raise
        logger.info("offboarding requested by %s", requested_by, extra={"tenantId": tenant_id})
        return Response(status_code=202, body={"tenantId": tenant_id, "status": "offboarding",
                                               "attempt": attempt})

    def _existing(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's record; 404 when there is none."""
        record = self._tenants.get(tenant_id)
        if record is None:
            raise NotFoundError(f"no tenant {tenant_id}")
        return record

    def _release(self, tenant_id: str, claim_id: str) -> None:
        try:
            self._tenants.release_claim(tenant_id, claim_id)
        except Exception as error:  # the claim's lease frees it anyway
            logger.warning("could not release the decision claim: %s", error,
                           extra={"tenantId": tenant_id})


def _require_tenant_id(tenant_id: str) -> None:
    """Ids that cannot exist are unknown, not a DynamoDB validation error."""
    if not TENANT_ID.match(tenant_id or ""):
        raise NotFoundError(f"no tenant {tenant_id[:100]}")


def parse_decision_body(raw_body: bytes | str | None) -> tuple[str, str | None]:
    body = read_json_object(
        raw_body, {"status", "reason"}, '{"status": "approved"|"rejected", "reason": "..."}'
    )
    status, reason = read_status_and_reason(body)
    if status == "rejected" and not reason:
        raise BadRequestError("a rejection needs a reason")
    return status, reason
