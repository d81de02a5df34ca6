"""An onboarding's end: its final status on the record, then its event, once.

The workflow's last task (Update Status & Notify) and its failure path come
here, and so does the reconciler, for a tenant it finds stuck or whose
outcome event never went out. Setting the status is conditional (a tenant in
a final status never moves to another); the tenant is then mailed its
outcome (outcome_mail.py, at most once, under the event's key), and the
event is published and remembered once published (``outcomeNotifiedAt``),
so a retry publishes nothing twice, save a crash between the two (the
event's ``eventKey`` lets consumers drop that duplicate). The mail goes
before the event: a mail SES could not take yet keeps the outcome due, and
the retry, or the reconciler, sends it.
"""
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.clock import utc_now
from chalicelib.errors import TenantAlreadyFinal, TenantNotFound
from chalicelib.events import OUTCOMES, EventPublisher
from chalicelib.logs import get_logger
from chalicelib.tenants import NewTenant, TenantRepository

if TYPE_CHECKING:
    from chalicelib.outcome_mail import OutcomeMail

logger = get_logger(__name__)

TIMEOUT_REASON = "no admin decision arrived within the approval window"
# What a tenant gives back when its onboarding ends without it (releases.py).
RELEASED_ON = {
    "rejected": ("user", "stripeCustomer", "contactList"),
    "timeout": ("stripeCustomer", "contactList"),
}


class Outcomes:
    def __init__(self, tenants: TenantRepository, publisher: EventPublisher,
                 clock: Callable[[], str] = utc_now, mail: "OutcomeMail | None" = None) -> None:
        self._tenants = tenants
        self._publisher = publisher
        self._clock = clock
        self._mail = mail  # None: no mail (the tenant is told by the event's consumers)

    def fail(self, tenant: NewTenant, reason: str) -> dict[str, Any]:
        """Fail the tenant and tell: ``failed`` with ``reason``, and its event."""
        return self.settle(tenant, "failed", reason, {"failureReason": reason})

    def settle(
        self,
        tenant: NewTenant,
        status: str,
        reason: str | None,
        attributes: dict[str, Any],
        release_failure: str | None = None,
    ) -> dict[str, Any]:
        """Move the tenant to ``status`` (with ``attributes`` on its record) and
        publish the outcome; however often repeated, one status and one event.

        ``release_failure``: giving back what the tenant took failed for good;
        it still ends in its status, and the reconciler reports the release.
        """
        now = self._clock()
        if release_failure:
            failure = {"what": list(RELEASED_ON.get(status, ())), "at": now,
                       "reason": release_failure}
            self._tenants.record_release_failure(tenant.tenant_id, failure)
            logger.warning("releasing what the tenant took failed: %s", release_failure,
                           extra={"tenantId": tenant.tenant_id})
        decision = attributes.get("decision")
        try:
            record: dict[str, Any] | None = self._tenants.finish(
                tenant.tenant_id, status, now, attributes)
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
            record = self._tenants.require(tenant.tenant_id)
            recorded = recorded_outcome(record)
            if recorded is None:  # offboarded meanwhile, its outcome long told
                return {"status": record.get("status"), "published": False}
            status, reason, decision = recorded
            logger.warning(
                "tenant already %s when the failure path ran; publishing its own outcome",
                status, extra={"tenantId": tenant.tenant_id},
            )

        if record is not None and record.get("outcomeNotifiedAt"):
            logger.info("%s was already published; not publishing it again", OUTCOMES[status],
                        extra={"tenantId": tenant.tenant_id})
            return {"status": status, "published": False}
        attempt = int(record.get("attempts", 1)) if record else 1
        if record is not None:
            self._tell_tenant(record, status, reason, attempt)
        self._publish(tenant, status, reason, decision, attempt)
        if record is not None:
            self._tenants.mark_notified(tenant.tenant_id, OUTCOMES[status], self._clock())
        return {"status": status, "published": True}

    def publish_due(self, record: dict[str, Any]) -> bool:
        """Publish the outcome a record says is due but was never sent (the
        reconciler); False when there is none to publish."""
        if not record.get("outcomeDue") or record.get("outcomeNotifiedAt"):
            return False
        recorded = recorded_outcome(record)
        if recorded is None:
            return False
        status, reason, decision = recorded
        tenant = NewTenant(record["pk"], record["email"], record["name"])
        self._tell_tenant(record, status, reason, int(record.get("attempts", 1)))
        self._publish(tenant, status, reason, decision, int(record.get("attempts", 1)))
        self._tenants.mark_notified(tenant.tenant_id, OUTCOMES[status], self._clock())
        return True

    def _tell_tenant(self, record: dict[str, Any], status: str, reason: str | None,
                     attempt: int) -> None:
        """The outcome mail, under the event's key; not to a tenant that has moved
        on since (offboarding), nor for a failure (the admins retry those)."""
        from chalicelib.outcome_mail import MAILED

        if self._mail is None or status not in MAILED or record.get("status") != status:
            return
        self._mail.tell(record, status, reason, outcome_key(record["pk"], status, attempt),
                        self._clock())

    def _publish(self, tenant: NewTenant, status: str, reason: str | None,
                 decision: dict[str, Any] | None, attempt: int) -> None:
        """A retried onboarding's outcome is a new event, with its own key."""
        event = OUTCOMES[status]
        key = outcome_key(tenant.tenant_id, status, attempt)
        detail: dict[str, Any] = {**tenant.to_dict(), "status": status, "eventKey": key}
        if attempt > 1:
            detail["attempt"] = attempt
        if reason:
            detail["reason"] = reason
        for field in ("decidedAt", "decidedBy"):
            if (decision or {}).get(field):
                detail[field] = (decision or {})[field]
        self._publisher.publish(event, detail)


def outcome_key(tenant_id: str, status: str, attempt: int) -> str:
    """The key of an onboarding attempt's outcome: its event's ``eventKey``, and its mail's."""
    event = OUTCOMES[status]
    return f"{tenant_id}:{event}" + (f":attempt-{attempt}" if attempt > 1 else "")


def recorded_outcome(record: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]] | None:
    """The onboarding outcome a record holds: (status, reason, decision), or None.

    ``outcomeDue`` names it while its event is unsent, also once the tenant
    has moved on (offboarding); otherwise the status, when it is an outcome.
    """
    status = record.get("outcomeDue") or record.get("status")
    if status not in OUTCOMES:
        return None
    decision: dict[str, Any] = record.get("decision") or {}
    reason = TIMEOUT_REASON if status == "timeout" else (
        decision.get("reason") or record.get("failureReason"))
    return str(status), reason, decision
