"""What each task of the state machine does, given its input and its clients.

Each function here is one Task state of ``statemachine.json``; app.py binds
it to a Lambda. Every step is idempotent: the state machine retries them.
"""
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Optional, Tuple

from chalicelib.billing import StripeBilling
from chalicelib.errors import InvalidTaskInput, TenantAlreadyFinal
from chalicelib.notifications import (
    APPROVAL_REQUESTED,
    DETAIL_TYPES,
    OFFBOARDING_COMPLETE,
    OFFBOARDING_FAILED,
    EventPublisher,
)
from chalicelib.settings import Settings
from chalicelib.tenants import OFFBOARDED, NewTenant, TenantNotFound, TenantRepository
from chalicelib.workflow import redact_token
from chalicelib.logs import get_logger

logger = get_logger(__name__)

MAX_REASON_LENGTH = 1000
TIMEOUT_REASON = "no admin decision arrived within the approval window"


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2026-11-26T13:51:53.123Z."""
    return _format(datetime.now(timezone.utc))


def tenant_from_input(event: Any) -> NewTenant:
    tenant = event.get("tenant") if isinstance(event, dict) else None
    if not isinstance(tenant, dict):
        raise InvalidTaskInput("task input has no tenant object")
    try:
        return NewTenant(
            tenant_id=str(tenant["tenantId"]),
            email=str(tenant["email"]),
            name=str(tenant["name"]),
        )
    except KeyError as missing:
        raise InvalidTaskInput(f"task input tenant lacks {missing}") from None


def create_tenant_record(
    event: Dict[str, Any], tenants: TenantRepository, settings: Settings
) -> Dict[str, Any]:
    tenant = tenant_from_input(event)
    record = tenants.create(tenant, utc_now())
    return {"createdAt": record["createdAt"], "stripeConfigured": settings.stripe_configured}


def create_stripe_customer(
    event: Dict[str, Any], tenants: TenantRepository, billing: StripeBilling
) -> Dict[str, str]:
    tenant = tenant_from_input(event)
    record = tenants.require(tenant.tenant_id)
    existing = record.get("stripeCustomerId")
    if existing:
        logger.info(
            "tenant already has Stripe customer %s", existing,
            extra={"tenantId": tenant.tenant_id},
        )
        return {"customerId": existing}
    return {"customerId": billing.create_customer(tenant, int(record.get("attempts", 1)))}


def update_tenant_with_stripe_id(
    event: Dict[str, Any], tenants: TenantRepository
) -> Dict[str, str]:
    tenant_id = event.get("tenantId") if isinstance(event, dict) else None
    customer_id = event.get("stripeCustomerId") if isinstance(event, dict) else None
    if not isinstance(tenant_id, str) or not isinstance(customer_id, str):
        raise InvalidTaskInput("task input needs tenantId and stripeCustomerId strings")
    tenants.set_stripe_customer(tenant_id, customer_id, utc_now())
    return {"stripeCustomerId": customer_id}


def create_contact_list(
    event: Dict[str, Any], tenants: TenantRepository, contact_lists: Any
) -> Dict[str, str]:
    """``contact_lists`` is a ContactLists or SharedListTopics (per stage)."""
    tenant = tenant_from_input(event)
    place = contact_lists.ensure_for_tenant(tenant.tenant_id, tenant.name)
    tenants.set_contact_list(tenant.tenant_id, place.list, utc_now(), place.topic)
    return place.to_dict()


def await_decision(
    event: Dict[str, Any], tenants: TenantRepository, publisher: EventPublisher
) -> Dict[str, Any]:
    """Runs when the wait for an admin's decision begins, and on every repeat.

    Keeps the task token with the tenant (so admins decide by tenant id) and
    asks for a decision with an Approval Requested event, once per wait: a
    repeat of the wait task (same wait: ``waitStartedAt``, the state's entry)
    brings a new token and a new deadline, which the record takes, but asks
    no one again. The deadline is this attempt's: Step Functions starts the
    task's TimeoutSeconds again on every retry. The token goes in neither an
    event nor a log line.
    """
    tenant = tenant_from_input(event)
    token = event.get("taskToken")
    if not isinstance(token, str) or not token:
        raise InvalidTaskInput("task input has no taskToken")
    window = event.get("approvalWindowSeconds")
    if not isinstance(window, int) or window <= 0:
        raise InvalidTaskInput("task input needs a positive approvalWindowSeconds")
    wait = _instant(event.get("waitStartedAt")) or ""

    while True:
        pending = tenants.require(tenant.tenant_id).get("pendingDecision") or {}
        now = utc_now()
        if pending.get("taskToken") == token:
            current = pending  # the very same attempt, invoked again: nothing moves
            break
        current = {"taskToken": token, "requestedAt": now,
                   "decideBy": _plus_seconds(now, window), "waitId": wait}
        if wait and pending.get("waitId") == wait:
            # the same wait, repeated: what it already did stays done
            current.update({k: v for k, v in pending.items() if k in PER_WAIT_FLAGS})
        if tenants.record_pending_decision(tenant.tenant_id, current, pending.get("taskToken")):
            break
    decide_by = current["decideBy"]
    if current.get("requestNotifiedAt"):
        logger.info("approval already requested for this wait", extra={"tenantId": tenant.tenant_id})
        return {"awaitingDecision": True, "decideBy": decide_by}
    publisher.publish(
        APPROVAL_REQUESTED,
        {
            **tenant.to_dict(),
            "status": "onboarding",
            "decideBy": decide_by,
            "eventKey": f"{tenant.tenant_id}:{APPROVAL_REQUESTED}:{wait or decide_by}",
        },
    )
    tenants.mark_pending(tenant.tenant_id, token, "requestNotifiedAt", utc_now())
    logger.info(
        "tenant %s awaits an admin decision until %s",
        tenant.tenant_id, decide_by,
        extra={"tenantId": tenant.tenant_id, "taskToken": redact_token(token)},
    )
    return {"awaitingDecision": True, "decideBy": decide_by}


# What a wait has done, kept when its task is repeated (the reconciler sends reminders).
PER_WAIT_FLAGS = ("requestNotifiedAt", "reminderSentAt")


def _instant(value: Any) -> Optional[str]:
    """An ISO-8601 instant as our UTC form, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return _format(moment)


def _plus_seconds(instant: str, seconds: int) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return _format(moment + timedelta(seconds=seconds))


def _format(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def update_status_and_notify(
    event: Dict[str, Any], tenants: TenantRepository, publisher: EventPublisher
) -> Dict[str, Any]:
    """Set the final status and publish its event, once, however often retried."""
    tenant = tenant_from_input(event)
    outcome = event.get("outcome")
    status = outcome.get("status") if isinstance(outcome, dict) else None
    if status not in DETAIL_TYPES:
        raise InvalidTaskInput(f"unknown outcome status {status!r}")

    reason, extra = _reason_and_attributes(status, outcome)
    now = utc_now()
    if outcome.get("releaseError"):
        # the tenant still ends in its status; the reconciler reports the release
        failure = {"what": list(RELEASED_ON.get(status, ())), "at": now,
                   "reason": failure_reason(outcome["releaseError"])}
        tenants.record_release_failure(tenant.tenant_id, failure)
        logger.warning("releasing what the tenant took failed: %s", failure["reason"],
                       extra={"tenantId": tenant.tenant_id})
    try:
        record: Optional[Dict[str, Any]] = tenants.finish(
            tenant.tenant_id, status, now, extra
        )
    except TenantNotFound:
        if status != "failed":
            raise
        # Onboarding failed before the record existed: still tell the world.
        record = None
    except TenantAlreadyFinal:
        if status != "failed":
            raise
        # The failure path after the final status was set but its event was
        # not published (e.g. EventBridge down past every retry): the record
        # is right, so publish ITS outcome rather than lose it.
        record = tenants.require(tenant.tenant_id)
        recorded = recorded_outcome(record)
        if recorded is None:  # offboarded meanwhile, its outcome long told
            return {"status": record.get("status"), "published": False}
        status, reason, decision = recorded
        extra = {"decision": decision} if decision else {}
        logger.warning(
            "tenant already %s when the failure path ran; publishing its own outcome",
            status, extra={"tenantId": tenant.tenant_id},
        )

    detail_type = DETAIL_TYPES[status]
    if record is not None and record.get("outcomeNotifiedAt"):
        logger.info(
            "%s was already published; not publishing it again", detail_type,
            extra={"tenantId": tenant.tenant_id},
        )
        return {"status": status, "published": False}

    attempt = int(record.get("attempts", 1)) if record else 1
    publish_outcome(publisher, tenant, status, reason, extra.get("decision"), attempt)
    if record is not None:
        tenants.mark_notified(tenant.tenant_id, detail_type, utc_now())
    return {"status": status, "published": True}


def recorded_outcome(record: Dict[str, Any]) -> Optional[Tuple[str, Optional[str], Dict[str, Any]]]:
    """The onboarding outcome a record holds: (status, reason, decision), or None.

    ``outcomeDue`` names it while its event is unsent, also once the tenant
    has moved on (offboarding); otherwise the status, when it is an outcome.
    """
    status = record.get("outcomeDue") or record.get("status")
    if status not in DETAIL_TYPES:
        return None
    decision = record.get("decision") or {}
    reason = TIMEOUT_REASON if status == "timeout" else (
        decision.get("reason") or record.get("failureReason"))
    return status, reason, decision


def publish_outcome(
    publisher: EventPublisher,
    tenant: NewTenant,
    status: str,
    reason: Optional[str],
    decision: Optional[Dict[str, Any]],
    attempt: int = 1,
) -> None:
    """The outcome event of a final status.

    Delivery is at least once (a crash between publishing and remembering it
    publishes again): eventKey lets consumers drop the duplicate. A retried
    onboarding's outcome is a new one, with its own key.
    """
    detail_type = DETAIL_TYPES[status]
    key = f"{tenant.tenant_id}:{detail_type}" + (f":attempt-{attempt}" if attempt > 1 else "")
    detail: Dict[str, Any] = {**tenant.to_dict(), "status": status, "eventKey": key}
    if attempt > 1:
        detail["attempt"] = attempt
    if reason:
        detail["reason"] = reason
    if decision:
        detail["decidedAt"] = decision.get("decidedAt")
        if decision.get("decidedBy"):
            detail["decidedBy"] = decision["decidedBy"]
    publisher.publish(detail_type, detail)


def _reason_and_attributes(status: str, outcome: Dict[str, Any]):
    """The human reason for an outcome and the record attributes it adds."""
    if status in ("active", "rejected"):
        decision = outcome.get("decision") if isinstance(outcome.get("decision"), dict) else {}
        stored = {
            key: decision.get(key)
            for key in ("status", "reason", "decidedAt", "decidedBy")
            if decision.get(key) is not None
        }
        return decision.get("reason"), ({"decision": stored} if stored else {})
    if status == "timeout":
        return TIMEOUT_REASON, {}
    reason = failure_reason(outcome.get("error"))
    return reason, {"failureReason": reason}


def failure_reason(error: Any) -> str:
    """A readable sentence from a state machine error object {Error, Cause}."""
    if not isinstance(error, dict):
        return "onboarding failed for an unknown reason"
    name = str(error.get("Error") or "Error")
    cause = error.get("Cause")
    message = ""
    if isinstance(cause, str) and cause:
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        message = parsed.get("errorMessage", "") if isinstance(parsed, dict) else cause
    text = f"{name}: {message}" if message else name
    return text[:MAX_REASON_LENGTH]


# --- giving back, and offboarding ----------------------------------------------------
# What a tenant gives back when its onboarding ends without it (releases.py).
RELEASED_ON = {
    "rejected": ("user", "stripeCustomer", "contactList"),
    "timeout": ("stripeCustomer", "contactList"),
}


def release_tenant_resources(event: Dict[str, Any], releases: Any) -> Dict[str, Any]:
    """One Task of either state machine: give back what the input names."""
    tenant = tenant_from_input(event)
    what = event.get("release")
    if not isinstance(what, list) or not what:
        raise InvalidTaskInput("task input needs a release list")
    done = releases.release(tenant.tenant_id, what)
    return {"released": sorted(done)}


def finish_offboarding(
    event: Dict[str, Any], tenants: TenantRepository, publisher: EventPublisher
) -> Dict[str, Any]:
    """The end of an offboarding run: offboarded, or back as it was with why not."""
    tenant = tenant_from_input(event)
    outcome = event.get("outcome") if isinstance(event.get("outcome"), dict) else {}
    status = outcome.get("status")
    if status not in ("offboarded", "failed"):
        raise InvalidTaskInput(f"unknown offboarding outcome {status!r}")
    now = utc_now()
    if status == "offboarded":
        record = tenants.finish_offboarding(tenant.tenant_id, now)
        detail_type, reason = OFFBOARDING_COMPLETE, record.get("offboardReason")
    else:
        reason = failure_reason(outcome.get("error"))
        record = tenants.fail_offboarding(tenant.tenant_id, reason, now)
        detail_type = OFFBOARDING_FAILED
        if record.get("status") == OFFBOARDED:
            # it was finished; only telling it failed: tell that it finished
            detail_type, reason = OFFBOARDING_COMPLETE, record.get("offboardReason")
            status = "offboarded"
    request = record.get("offboarding") or {}
    if request.get("notifiedEvent") == detail_type:
        return {"status": record.get("status"), "published": False}
    detail: Dict[str, Any] = {
        **tenant.to_dict(), "status": record.get("status"),
        "eventKey": f"{tenant.tenant_id}:{detail_type}:{request.get('requestedAt')}",
        "requestedBy": request.get("requestedBy"),
    }
    if reason:
        detail["reason"] = reason
    if status == "offboarded":
        detail["offboardedAt"] = record.get("offboardedAt")
    publisher.publish(detail_type, detail)
    tenants.mark_offboarding_notified(tenant.tenant_id, detail_type, utc_now())
    return {"status": record.get("status"), "published": True}
