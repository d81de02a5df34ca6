import json
import re

import boto3
import jsonschema
import pytest

from chalicelib.errors import AwsServiceUnavailable, EventPublishFailed, InvalidEvent
from chalicelib.events import CATALOGUE, FIELDS, ONBOARDING_COMPLETE, EventPublisher
from tests.support import PROJECT_DIR
from tests.unit.conftest import REGION, FailingClient

BUS = "tenant-onboarding-test"
SOURCE = "tenant-onboarding"
COMPLETE = {"tenantId": "t-1", "email": "ada@example.com", "name": "Ada Ltd", "status": "active",
            "eventKey": "t-1:Tenant Onboarding Complete"}


@pytest.fixture
def bus_queue(aws):
    """A bus whose every event of our source lands in an SQS queue."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="outcomes")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="all-outcomes", EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE]})
    )
    events.put_targets(
        Rule="all-outcomes", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    return events, sqs, queue_url


def received(sqs, queue_url):
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    )
    return [json.loads(m["Body"]) for m in messages]


def test_given_a_bus_when_published_then_one_event_with_source_type_and_detail_arrives(
    bus_queue,
):
    events, sqs, queue_url = bus_queue
    publisher = EventPublisher(events, BUS, SOURCE)

    event_id = publisher.publish("Tenant Onboarding Complete", COMPLETE)

    [event] = received(sqs, queue_url)
    assert event["id"] == event_id
    assert event["source"] == SOURCE
    assert event["detail-type"] == "Tenant Onboarding Complete"
    assert event["detail"] == COMPLETE


class RecordingEvents:
    def __init__(self, response):
        self.response = response
        self.entries = None

    def put_events(self, Entries):
        self.entries = Entries
        return self.response


def test_given_a_detail_when_published_then_detail_is_sent_as_a_json_string():
    events = RecordingEvents({"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})

    EventPublisher(events, BUS, SOURCE).publish(ONBOARDING_COMPLETE, COMPLETE)

    [entry] = events.entries
    assert entry["EventBusName"] == BUS
    assert entry["DetailType"] == "Tenant Onboarding Complete"
    assert isinstance(entry["Detail"], str)
    assert json.loads(entry["Detail"]) == COMPLETE


def test_given_eventbridge_reports_a_failed_entry_when_published_then_event_publish_failed():
    events = RecordingEvents(
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}],
        }
    )

    with pytest.raises(EventPublishFailed, match="InternalFailure"):
        EventPublisher(events, BUS, SOURCE).publish(ONBOARDING_COMPLETE, COMPLETE)


def test_given_eventbridge_returns_no_event_id_when_published_then_event_publish_failed():
    events = RecordingEvents({"FailedEntryCount": 0, "Entries": [{}]})

    with pytest.raises(EventPublishFailed):
        EventPublisher(events, BUS, SOURCE).publish(ONBOARDING_COMPLETE, COMPLETE)


def test_given_eventbridge_throttles_when_published_then_aws_service_unavailable():
    with pytest.raises(AwsServiceUnavailable):
        EventPublisher(FailingClient("ThrottlingException"), BUS, SOURCE).publish(
            ONBOARDING_COMPLETE, COMPLETE)


# --- the catalogue ---------------------------------------------------------------------------
@pytest.mark.parametrize("detail, why", [
    ({k: v for k, v in COMPLETE.items() if k != "eventKey"}, "missing ['eventKey']"),
    ({**COMPLETE, "taskToken": "secret"}, "unknown ['taskToken']"),
    ({**COMPLETE, "attempt": "2"}, "mistyped ['attempt']"),
    ({**COMPLETE, "email": None}, "missing ['email']"),
])
def test_a_detail_the_catalogue_does_not_describe_is_refused_before_it_is_sent(detail, why):
    events = RecordingEvents({"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})

    with pytest.raises(InvalidEvent, match=re.escape(why)):
        EventPublisher(events, BUS, SOURCE).publish(ONBOARDING_COMPLETE, detail)

    assert events.entries is None  # nothing went out


def test_a_detail_type_outside_the_catalogue_is_refused():
    events = RecordingEvents({"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})

    with pytest.raises(InvalidEvent, match="not in the event catalogue"):
        EventPublisher(events, BUS, SOURCE).publish("Tenant Onboarding Maybe", COMPLETE)


@pytest.mark.parametrize("event", sorted(CATALOGUE))
def test_each_schema_accepts_a_complete_detail_and_refuses_an_unknown_field(event):
    declared = CATALOGUE[event]
    detail = {field: 2 if FIELDS[field][0] == "integer" else "x" for field in declared.fields}

    jsonschema.validate(detail, declared.schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**detail, "taskToken": "x"}, declared.schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in detail.items() if k != "tenantId"}, declared.schema())


@pytest.mark.parametrize("event", sorted(CATALOGUE))
def test_the_docs_list_each_event_with_each_of_its_fields(event):
    section = docs_section(event)
    for field in CATALOGUE[event].fields:
        assert f"`{field}`" in section, f"docs/events.md: {event} lacks {field}"


def docs_section(event: str) -> str:
    """The part of docs/events.md under the event's own heading."""
    text = (PROJECT_DIR / "docs" / "events.md").read_text()
    heading = f"### {event}\n"
    assert heading in text, f"docs/events.md has no heading for {event}"
    return text.split(heading, 1)[1].split("\n### ", 1)[0]
