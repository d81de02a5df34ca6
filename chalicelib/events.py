"""The events the app puts on the stage's EventBridge bus: the catalogue, and the publisher.

Every event type is declared once, here: its detail type, when it goes out
and the fields of its detail. The publisher refuses a detail the catalogue
does not describe (a bug, not an outage: ``InvalidEvent``), the functional
tests check every event they see against ``EventType.schema()``, and a test
checks that docs/events.md lists each type with each of its fields.

Delivery is at least once: every detail carries an ``eventKey``, the same
for every delivery of the same event, by which consumers drop duplicates.
"""
import json
from typing import TYPE_CHECKING, Any

from chalicelib.errors import EventPublishFailed, InvalidEvent, aws_call
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

logger = get_logger(__name__)

DEFAULT_SOURCE = "tenant-onboarding"

# Every field any detail may hold: its JSON type and what it means.
FIELDS: dict[str, tuple[str, str]] = {
    "tenantId": ("string", "the tenant id: the sub of the tenant's Cognito user"),
    "email": ("string", "the tenant's email, as it signed up"),
    "name": ("string", "the tenant's company name"),
    "status": ("string", "the tenant's status once the event went out"),
    "eventKey": ("string", "the same for each delivery of one event: drop duplicates by it"),
    "decideBy": ("string", "when the approval window ends (ISO-8601 UTC)"),
    "secondsLeft": ("integer", "seconds from the reminder to decideBy"),
    "reason": ("string", "why: the rejection's reason, the failure, the timeout"),
    "decidedAt": ("string", "when the admin decided (ISO-8601 UTC)"),
    "decidedBy": ("string", "the deciding admin's email"),
    "attempt": ("integer", "which onboarding attempt ended (present from the second on)"),
    "requestedBy": ("string", "the admin who asked for the offboarding"),
    "offboardedAt": ("string", "when the tenant was offboarded (ISO-8601 UTC)"),
}
_JSON_TYPES: dict[str, type] = {"string": str, "integer": int}
TENANT = ("tenantId", "email", "name", "status", "eventKey")
DECISION = ("decidedAt", "decidedBy")


class EventType(str):
    """A detail type (the string EventBridge carries) and what its detail holds."""

    when: str
    required: tuple[str, ...]
    optional: tuple[str, ...]

    def __new__(cls, name: str, when: str, required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> "EventType":
        declared = super().__new__(cls, name)
        declared.when = when
        declared.required = TENANT + required
        declared.optional = optional
        return declared

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional

    def schema(self) -> dict[str, Any]:
        """A JSON Schema of the detail."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": str(self),
            "type": "object",
            "required": list(self.required),
            "properties": {field: {"type": FIELDS[field][0], "description": FIELDS[field][1]}
                           for field in self.fields},
            "additionalProperties": False,
        }

    def check(self, detail: dict[str, Any]) -> None:
        """InvalidEvent unless ``detail`` is one the catalogue describes."""
        missing = [field for field in self.required if detail.get(field) is None]
        unknown = sorted(set(detail) - set(self.fields))
        mistyped = [field for field, value in detail.items() if field in self.fields
                    and not _is(value, FIELDS[field][0])]
        if missing or unknown or mistyped:
            raise InvalidEvent(
                f"'{self}' detail does not match the catalogue: missing {missing}, "
                f"unknown {unknown}, mistyped {mistyped}")


def _is(value: Any, json_type: str) -> bool:
    return isinstance(value, _JSON_TYPES[json_type]) and not isinstance(value, bool)


APPROVAL_REQUESTED = EventType(
    "Tenant Onboarding Approval Requested",
    "the wait for an admin's decision began (once per wait)", ("decideBy",))
APPROVAL_REMINDER = EventType(
    "Tenant Onboarding Approval Reminder",
    "the reconciler: less than APPROVAL_REMINDER_SECONDS remain (once per wait)",
    ("decideBy", "secondsLeft"))
ONBOARDING_COMPLETE = EventType(
    "Tenant Onboarding Complete", "an admin approved: the tenant is active", (),
    ("reason", *DECISION, "attempt"))
ONBOARDING_REJECTED = EventType(
    "Tenant Onboarding Rejected", "an admin rejected: the tenant gave back what it took",
    (), ("reason", *DECISION, "attempt"))
ONBOARDING_FAILED = EventType(
    "Tenant Onboarding Failed", "a step failed for good, or the reconciler found it stuck",
    ("reason",), ("attempt",))
ONBOARDING_TIMEOUT = EventType(
    "Tenant Onboarding Timeout", "no decision by decideBy: the tenant gave back what it took",
    ("reason",), ("attempt",))
OFFBOARDING_COMPLETE = EventType(
    "Tenant Offboarding Complete", "the tenant gave back everything and is offboarded",
    ("requestedBy", "offboardedAt"), ("reason",))
OFFBOARDING_FAILED = EventType(
    "Tenant Offboarding Failed", "an offboarding step failed for good: the tenant is back "
    "in its status", ("requestedBy", "reason"))

# The onboarding's final statuses and the event each publishes.
OUTCOMES: dict[str, EventType] = {
    "active": ONBOARDING_COMPLETE,
    "rejected": ONBOARDING_REJECTED,
    "failed": ONBOARDING_FAILED,
    "timeout": ONBOARDING_TIMEOUT,
}
CATALOGUE: dict[str, EventType] = {str(event): event for event in (
    APPROVAL_REQUESTED, APPROVAL_REMINDER, *OUTCOMES.values(),
    OFFBOARDING_COMPLETE, OFFBOARDING_FAILED)}


class EventPublisher:
    def __init__(self, events_client: "EventBridgeClient", bus_name: str, source: str) -> None:
        self._events = events_client
        self._bus_name = bus_name
        self._source = source

    def publish(self, detail_type: str, detail: dict[str, Any]) -> str:
        """Put one event of the catalogue; EventPublishFailed if EventBridge refused it.

        PutEvents reports per-entry failures in its response instead of
        raising, so the count has to be checked here.
        """
        event = CATALOGUE.get(detail_type)
        if event is None:
            raise InvalidEvent(f"'{detail_type}' is not in the event catalogue")
        event.check(detail)
        with aws_call("EventBridge"):
            response = self._events.put_events(
                Entries=[
                    {
                        "EventBusName": self._bus_name,
                        "Source": self._source,
                        "DetailType": str(event),
                        "Detail": json.dumps(detail, default=str),
                    }
                ]
            )
        entry = (response.get("Entries") or [{}])[0]
        if response.get("FailedEntryCount", 0) or not entry.get("EventId"):
            raise EventPublishFailed(
                f"EventBridge did not accept '{event}': "
                f"{entry.get('ErrorCode', 'unknown')} {entry.get('ErrorMessage', '')}".strip()
            )
        event_id = str(entry["EventId"])
        logger.info("published %s (%s)", event, event_id, extra={"tenantId": detail.get("tenantId")})
        return event_id
