import json

import boto3
import pytest

from chalicelib.errors import AwsServiceUnavailable, EventPublishFailed
from chalicelib.notifications import EventPublisher
from tests.unit.conftest import REGION, FailingClient

BUS = "tenant-onboarding-test"
SOURCE = "tenant-onboarding"


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

    event_id = publisher.publish(
        "Tenant Onboarding Complete", {"tenantId": "t-1", "status": "active"}
    )

    [event] = received(sqs, queue_url)
    assert event["id"] == event_id
    assert event["source"] == SOURCE
    assert event["detail-type"] == "Tenant Onboarding Complete"
    assert event["detail"] == {"tenantId": "t-1", "status": "active"}


class RecordingEvents:
    def __init__(self, response):
        self.response = response
        self.entries = None

    def put_events(self, Entries):
        self.entries = Entries
        return self.response


def test_given_a_detail_when_published_then_detail_is_sent_as_a_json_string():
    events = RecordingEvents({"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})

    EventPublisher(events, BUS, SOURCE).publish("X", {"tenantId": "t-1"})

    [entry] = events.entries
    assert entry["EventBusName"] == BUS
    assert isinstance(entry["Detail"], str)
    assert json.loads(entry["Detail"]) == {"tenantId": "t-1"}


def test_given_eventbridge_reports_a_failed_entry_when_published_then_event_publish_failed():
    events = RecordingEvents(
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}],
        }
    )

    with pytest.raises(EventPublishFailed, match="InternalFailure"):
        EventPublisher(events, BUS, SOURCE).publish("X", {"tenantId": "t-1"})


def test_given_eventbridge_returns_no_event_id_when_published_then_event_publish_failed():
    events = RecordingEvents({"FailedEntryCount": 0, "Entries": [{}]})

    with pytest.raises(EventPublishFailed):
        EventPublisher(events, BUS, SOURCE).publish("X", {"tenantId": "t-1"})


def test_given_eventbridge_throttles_when_published_then_aws_service_unavailable():
    with pytest.raises(AwsServiceUnavailable):
        EventPublisher(FailingClient("ThrottlingException"), BUS, SOURCE).publish("X", {})
