"""The local stack's admin notifications (scripts/local/sns.py), on the template's own rules.

The stage is provisioned in moto from template.json; an event put on its bus
reaches the admin notifications topic through the rule's input transformer,
and a confirmed email subscription gets it as a mail in the outbox.
"""
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from chalicelib.events import APPROVAL_REMINDER, OFFBOARDING_FAILED, ONBOARDING_FAILED
from scripts.local import sns
from scripts.local.aws import behave_like_aws
from scripts.local.resources import provision_stage
from scripts.shared import LOCAL_ACCOUNT, LOCAL_REGION

API = "http://127.0.0.1:9999"
ADMIN = "ops@example.com"


class World:
    def __init__(self) -> None:
        self.mails: list[dict[str, Any]] = []
        sns.mail_to(self.mails.append, "http://127.0.0.1:4566")
        session = boto3.session.Session(region_name=LOCAL_REGION)
        self.resources = provision_stage(session, "local", LOCAL_ACCOUNT, api_url=API)
        self.topic = self.resources.ref("AdminNotificationsTopic")
        self.sns = session.client("sns")
        self.events = session.client("events")

    def put(self, detail_type: str, **detail: Any) -> None:
        answer = self.events.put_events(Entries=[{
            "EventBusName": self.resources.ref("EventBus"), "Source": "tenant-onboarding",
            "DetailType": detail_type, "Detail": json.dumps(detail)}])
        assert answer["FailedEntryCount"] == 0

    def subscribe(self, email: str = ADMIN) -> str:
        self.sns.subscribe(TopicArn=self.topic, Protocol="email", Endpoint=email)
        link = re.search(r"^http\S+$", self.mails[-1]["body"], re.MULTILINE)
        assert link, self.mails[-1]
        return parse_qs(urlsplit(link.group(0)).query)["Token"][0]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        behave_like_aws(enforce_ses_quotas=False)
        yield World()
    sns.mail_to(None)


def tenant(n: int, **fields: Any) -> dict[str, Any]:
    return {"tenantId": f"t-{n}", "email": f"t{n}@example.com", "name": f"Tenant {n}",
            "status": "onboarding", "eventKey": f"k{n}", **fields}


def test_a_subscription_is_pending_and_mailed_nothing_until_its_token_comes_back(world):
    token = world.subscribe()
    [confirmation] = world.mails
    assert confirmation["to"] == ADMIN and confirmation["subject"] == sns.CONFIRMATION_SUBJECT
    world.put(APPROVAL_REMINDER, **tenant(1, decideBy="2026-12-04T10:00:00.000Z", secondsLeft=60))
    assert len(world.mails) == 1

    world.sns.confirm_subscription(TopicArn=world.topic, Token=token)
    world.put(APPROVAL_REMINDER, **tenant(1, decideBy="2026-12-04T10:00:00.000Z", secondsLeft=60))

    assert len(world.mails) == 2
    assert world.mails[1]["body"].startswith(f"{APPROVAL_REMINDER} (stage local)\n")


def test_subscribing_again_while_pending_mails_the_same_link_again(world):
    first = world.subscribe()
    second = world.subscribe()

    assert first == second and len(world.mails) == 2


def test_a_token_never_mailed_is_refused(world):
    world.subscribe()

    with pytest.raises(world.sns.exceptions.InvalidParameterException):
        world.sns.confirm_subscription(TopicArn=world.topic, Token="forged")


@pytest.mark.parametrize("detail_type, extra", [
    (ONBOARDING_FAILED, {"status": "failed"}),
    (OFFBOARDING_FAILED, {"status": "active", "requestedBy": "boss@example.com"}),
])
def test_a_failure_mail_names_the_tenant_the_reason_and_links_to_it(world, detail_type, extra):
    world.sns.confirm_subscription(TopicArn=world.topic, Token=world.subscribe())

    world.put(detail_type, **tenant(7, reason="StripeUnavailable: Stripe did not answer", **extra))

    body = world.mails[-1]["body"].splitlines()
    assert body[0] == f"{detail_type} (stage local)"
    assert {"Company:   Tenant 7", "Email:     t7@example.com",
            "Reason:    StripeUnavailable: Stripe did not answer", "Tenant id: t-7",
            f"{API}/admin#t-7"} <= set(body)


def test_events_no_admin_acts_on_are_not_mailed(world):
    world.sns.confirm_subscription(TopicArn=world.topic, Token=world.subscribe())

    world.put("Tenant Onboarding Complete", **tenant(8, status="active"))

    assert len(world.mails) == 1  # the confirmation only


class Rule:
    name, arn = "rule", "arn:aws:events:us-east-1:123456789012:rule/bus/rule"


def test_each_variable_is_filled_once_so_a_value_is_never_read_as_a_placeholder():
    transformer = {"InputPathsMap": {"name": "$.detail.name", "id": "$.detail.tenantId",
                                     "n": "$.detail.count", "gone": "$.detail.missing"},
                   "InputTemplate": "<name> / <id> / <n> / [<gone>] / <unmapped> / "
                                    "<aws.events.rule-name>"}
    event = {"detail": {"name": "<id> Ltd", "tenantId": "t-1", "count": 3}}

    assert sns.transformed_text(transformer, event, Rule()) == (
        "<id> Ltd / t-1 / 3 / [] / <unmapped> / rule")
