"""The admin CLI's side of the admin notifications (scripts/admin/notifications.py).

SNS as AWS answers it: a subscription not yet confirmed is listed with the
ARN ``PendingConfirmation`` and cannot be removed; one confirmed has its ARN.
(The local stack lists a pending one with its ARN, and says so in its
attributes: the same code must act the same on both.)
"""
import json
from typing import Any

import pytest

from scripts.admin import cli
from scripts.admin.notifications import PENDING, AdminNotifications

TOPIC = "arn:aws:sns:us-east-1:123456789012:tenant-onboarding-dev-admin-notifications"


class Sns:
    """ListSubscriptionsByTopic (paged), GetSubscriptionAttributes, Subscribe, Unsubscribe."""

    def __init__(self, subscriptions: list[tuple[str, str]], pending_attribute: set[str] = frozenset(),
                 page_size: int = 1) -> None:
        self.subscriptions = [{"SubscriptionArn": arn, "Endpoint": email, "Protocol": "email",
                               "TopicArn": TOPIC} for email, arn in subscriptions]
        self.pending_attribute = pending_attribute
        self.page_size = page_size
        self.calls: list[tuple[str, Any]] = []

    def get_paginator(self, operation: str) -> "Sns":
        assert operation == "list_subscriptions_by_topic"
        return self

    def paginate(self, TopicArn: str) -> list[dict[str, Any]]:
        assert TopicArn == TOPIC
        subs = self.subscriptions
        return [{"Subscriptions": subs[i:i + self.page_size]}
                for i in range(0, len(subs), self.page_size)] or [{"Subscriptions": []}]

    def get_subscription_attributes(self, SubscriptionArn: str) -> dict[str, Any]:
        assert SubscriptionArn != PENDING  # AWS: no such subscription
        pending = SubscriptionArn in self.pending_attribute
        return {"Attributes": {"PendingConfirmation": str(pending).lower()}}

    def subscribe(self, **call: str) -> None:
        self.calls.append(("subscribe", call))

    def unsubscribe(self, SubscriptionArn: str) -> None:
        assert SubscriptionArn != PENDING
        self.calls.append(("unsubscribe", SubscriptionArn))


def test_a_new_address_is_subscribed_and_asked_to_confirm():
    sns = Sns([("someone-else@example.com", f"{TOPIC}:1")])

    assert AdminNotifications(sns, TOPIC).subscribe("ops@example.com") is True
    assert sns.calls == [("subscribe", {"TopicArn": TOPIC, "Protocol": "email",
                                        "Endpoint": "ops@example.com"})]


def test_a_confirmed_address_is_left_alone_whatever_its_case():
    sns = Sns([("x@example.com", f"{TOPIC}:1"), ("Ops@Example.com", f"{TOPIC}:2")])

    assert AdminNotifications(sns, TOPIC).subscribe("ops@example.com") is False
    assert sns.calls == []


@pytest.mark.parametrize("listed, pending_attribute", [(PENDING, set()),  # as AWS lists it
                                                       (f"{TOPIC}:2", {f"{TOPIC}:2"})])  # local
def test_a_pending_address_is_asked_again_and_never_unsubscribed(listed, pending_attribute):
    sns = Sns([("ops@example.com", listed)], pending_attribute)
    notifications = AdminNotifications(sns, TOPIC)

    assert notifications.subscribe("ops@example.com") is True
    gone = notifications.unsubscribe("ops@example.com")

    assert (gone.removed, gone.pending) == (0, 1)
    assert [name for name, _ in sns.calls] == ["subscribe"]


def test_every_confirmed_subscription_of_the_address_is_removed_and_no_other():
    sns = Sns([("ops@example.com", f"{TOPIC}:1"), ("other@example.com", f"{TOPIC}:2"),
               ("OPS@example.com", f"{TOPIC}:3")])

    gone = AdminNotifications(sns, TOPIC).unsubscribe("ops@example.com")

    assert (gone.removed, gone.pending) == (2, 0)
    assert sns.calls == [("unsubscribe", f"{TOPIC}:1"), ("unsubscribe", f"{TOPIC}:3")]


@pytest.mark.parametrize("command", ["add-admin", "remove-admin"])
def test_a_stage_without_the_topic_is_a_sentence_before_anything_changes(
        tmp_path, capsys, monkeypatch, command):
    (tmp_path / "stack.json").write_text(json.dumps({
        "region": "us-east-1", "awsEndpoint": "http://127.0.0.1:9", "adminUserPoolId": "pool"}))
    monkeypatch.setattr(cli, "aws_session", lambda *args: pytest.fail("no AWS call expected"))

    code = cli.main(["--state-dir", str(tmp_path), command, "ops@example.com"])

    error = capsys.readouterr().err
    assert code == 1 and "Traceback" not in error
    assert error.strip() == ("admin: the local stage has no admin notifications topic: "
                             "restart the local stack (make run)")
