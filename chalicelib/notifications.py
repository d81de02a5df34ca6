"""Outcome events on the EventBridge bus."""
import json
from typing import Any, Dict

from chalicelib.errors import EventPublishFailed, aws_call
from chalicelib.logs import get_logger

logger = get_logger(__name__)

APPROVAL_REQUESTED = "Tenant Onboarding Approval Requested"
APPROVAL_REMINDER = "Tenant Onboarding Approval Reminder"
OFFBOARDING_COMPLETE = "Tenant Offboarding Complete"
OFFBOARDING_FAILED = "Tenant Offboarding Failed"
DETAIL_TYPES = {
    "active": "Tenant Onboarding Complete",
    "rejected": "Tenant Onboarding Rejected",
    "failed": "Tenant Onboarding Failed",
    "timeout": "Tenant Onboarding Timeout",
}


class EventPublisher:
    def __init__(self, events_client: Any, bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus_name = bus_name
        self._source = source

    def publish(self, detail_type: str, detail: Dict[str, Any]) -> str:
        """Put one event; raise EventPublishFailed if EventBridge refused it.

        PutEvents reports per-entry failures in its response instead of
        raising, so the count has to be checked here.
        """
        with aws_call("EventBridge"):
            response = self._events.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus_name,
                        "Source": self._source,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail, default=str),
                    }
                ]
            )
        entry = (response.get("Entries") or [{}])[0]
        if response.get("FailedEntryCount", 0) or not entry.get("EventId"):
            raise EventPublishFailed(
                f"EventBridge did not accept '{detail_type}': "
                f"{entry.get('ErrorCode', 'unknown')} {entry.get('ErrorMessage', '')}".strip()
            )
        logger.info(
            "published %s (%s)",
            detail_type,
            entry["EventId"],
            extra={"tenantId": detail.get("tenantId")},
        )
        return entry["EventId"]
