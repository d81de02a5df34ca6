"""An offboarding's end: ``offboarded``, or back in its status with why not; then its event, once.

The offboarding state machine's last task (Finish Offboarding) comes here,
and so does the reconciler, for an offboarding whose run ended without
finishing it. The record moves first (conditionally: ``offboarding`` to
``offboarded``, or back to the status it had), then the event goes out and
is remembered on the request (``notifiedEvent``), so a repeat publishes
nothing twice.
"""
from collections.abc import Callable
from typing import Any

from chalicelib.clock import utc_now
from chalicelib.events import OFFBOARDING_COMPLETE, OFFBOARDING_FAILED, EventPublisher
from chalicelib.tenants import OFFBOARDED, NewTenant, TenantRepository


class Offboardings:
    def __init__(self, tenants: TenantRepository, publisher: EventPublisher,
                 clock: Callable[[], str] = utc_now) -> None:
        self._tenants = tenants
        self._publisher = publisher
        self._clock = clock

    def finish(self, tenant: NewTenant) -> dict[str, Any]:
        """Every release done: the tenant is offboarded (a soft delete), and told."""
        record = self._tenants.finish_offboarding(tenant.tenant_id, self._clock())
        return self._tell(tenant, record)

    def fail(self, tenant: NewTenant, reason: str) -> dict[str, Any]:
        """A step failed for good: back to the status it had, with ``reason``, and told.
        An offboarding that had in fact finished is told as finished."""
        record = self._tenants.fail_offboarding(tenant.tenant_id, reason, self._clock())
        if record.get("status") == OFFBOARDED:
            return self._tell(tenant, record)
        return self._tell(tenant, record, reason)

    def _tell(self, tenant: NewTenant, record: dict[str, Any],
              failure: str | None = None) -> dict[str, Any]:
        event = OFFBOARDING_FAILED if failure else OFFBOARDING_COMPLETE
        request = record.get("offboarding") or {}
        if request.get("notifiedEvent") == event:
            return {"status": record.get("status"), "published": False}
        detail: dict[str, Any] = {
            **tenant.to_dict(), "status": record.get("status"),
            "eventKey": f"{tenant.tenant_id}:{event}:{request.get('requestedAt')}",
            "requestedBy": request.get("requestedBy"),
        }
        reason = failure or record.get("offboardReason")
        if reason:
            detail["reason"] = reason
        if not failure:
            detail["offboardedAt"] = record.get("offboardedAt")
        self._publisher.publish(event, detail)
        self._tenants.mark_offboarding_notified(tenant.tenant_id, event, self._clock())
        return {"status": record.get("status"), "published": True}
