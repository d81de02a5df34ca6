"""What each task of the state machine does, given its input and its clients.

Each function here is one Task state of ``statemachine.json``; app.py binds
it to a Lambda. Every step is idempotent: the state machine retries them.
"""
import json
from typing import TYPE_CHECKING, Any

from chalicelib.clock import instant_or_none, plus_seconds, utc_now
from chalicelib.errors import InvalidTaskInput
from chalicelib.events import APPROVAL_REQUESTED, OUTCOMES, EventPublisher
from chalicelib.logs import get_logger
from chalicelib.outcomes import TIMEOUT_REASON, Outcomes
from chalicelib.settings import Settings
from chalicelib.tenants import MAX_REASON_LENGTH, NewTenant, TenantRepository
from chalicelib.workflow import redact_token

if TYPE_CHECKING:
    from chalicelib.billing import BillingProvider
    from chalicelib.contact_lists import ContactListProvider
    from chalicelib.offboarding import Offboardings
    from chalicelib.releases import TenantReleases

logger = get_logger(__name__)


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
    event: dict[str, Any], tenants: TenantRepository, settings: Settings
) -> dict[str, Any]:
    tenant = tenant_from_input(event)
    record = tenants.create(tenant, utc_now())
    return {"createdAt": record["createdAt"], "stripeConfigured": settings.stripe_configured}


def create_stripe_customer(
    event: dict[str, Any], tenants: TenantRepository, billing: "BillingProvider"
) -> dict[str, str]:
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
    event: dict[str, Any], tenants: TenantRepository
) -> dict[str, str]:
    tenant_id = event.get("tenantId") if isinstance(event, dict) else None
    customer_id = event.get("stripeCustomerId") if isinstance(event, dict) else None
    if not isinstance(tenant_id, str) or not isinstance(customer_id, str):
        raise InvalidTaskInput("task input needs tenantId and stripeCustomerId strings")
    tenants.set_stripe_customer(tenant_id, customer_id, utc_now())
    return {"stripeCustomerId": customer_id}


def create_contact_list(
    event: dict[str, Any], tenants: TenantRepository, contact_lists: "ContactListProvider"
) -> dict[str, str]:
    """``contact_lists`` is the stage's mode (contact_lists.py)."""
    tenant = tenant_from_input(event)
    place = contact_lists.ensure_for_tenant(tenant.tenant_id, tenant.name)
    tenants.set_contact_list(tenant.tenant_id, place.to_dict(), utc_now())
    return place.to_dict()


def await_decision(
    event: dict[str, Any], tenants: TenantRepository, publisher: EventPublisher
) -> dict[str, Any]:
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
    wait = instant_or_none(event.get("waitStartedAt")) or ""

    while True:
        pending = tenants.require(tenant.tenant_id).get("pendingDecision") or {}
        now = utc_now()
        if pending.get("taskToken") == token:
            current = pending  # the very same attempt, invoked again: nothing moves
            break
        current = {"taskToken": token, "requestedAt": now,
                   "decideBy": plus_seconds(now, window), "waitId": wait}
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


def update_status_and_notify(event: dict[str, Any], outcomes: Outcomes) -> dict[str, Any]:
    """Set the final status and publish its event, once, however often retried."""
    tenant = tenant_from_input(event)
    outcome = event.get("outcome")
    status = outcome.get("status") if isinstance(outcome, dict) else None
    if not isinstance(outcome, dict) or not isinstance(status, str) or status not in OUTCOMES:
        raise InvalidTaskInput(f"unknown outcome status {status!r}")
    reason, attributes = _reason_and_attributes(status, outcome)
    release_error = outcome.get("releaseError")
    return outcomes.settle(tenant, status, reason, attributes,
                           failure_reason(release_error) if release_error else None)


def _reason_and_attributes(
    status: str, outcome: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """The human reason for an outcome and the record attributes it adds."""
    if status in ("active", "rejected"):
        decision: dict[str, Any] = (outcome["decision"] if isinstance(outcome.get("decision"), dict)
                                    else {})
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
def release_tenant_resources(event: dict[str, Any], releases: "TenantReleases") -> dict[str, Any]:
    """One Task of either state machine: give back what the input names."""
    tenant = tenant_from_input(event)
    what = event.get("release")
    if not isinstance(what, list) or not what:
        raise InvalidTaskInput("task input needs a release list")
    done = releases.release(tenant.tenant_id, what)
    return {"released": sorted(done)}


def finish_offboarding(event: dict[str, Any], offboardings: "Offboardings") -> dict[str, Any]:
    """The end of an offboarding run: offboarded, or back as it was with why not."""
    tenant = tenant_from_input(event)
    outcome = event.get("outcome") if isinstance(event.get("outcome"), dict) else {}
    status = (outcome or {}).get("status")
    if status == "offboarded":
        return offboardings.finish(tenant)
    if status == "failed":
        return offboardings.fail(tenant, failure_reason((outcome or {}).get("error")))
    raise InvalidTaskInput(f"unknown offboarding outcome {status!r}")
