"""An admin's place on the stage's admin notifications topic (SNS, email).

``add-admin`` subscribes the admin's email: SNS mails it a link to confirm,
and only a confirmed address is mailed the notifications (tenants waiting
for a decision, failed onboardings and offboardings, alarms).
``remove-admin`` unsubscribes every confirmed subscription of that email.

SNS lists a subscription not yet confirmed as ``PendingConfirmation``,
without an ARN, so it cannot be removed: it lapses if not confirmed within
three days. ``remove`` reports how many it left.

Uses the caller's AWS credentials: ``sns:ListSubscriptionsByTopic``,
``sns:GetSubscriptionAttributes``, ``sns:Subscribe`` and ``sns:Unsubscribe``
on the topic (docs/deploy.md).
"""
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PROTOCOL = "email"
PENDING = "PendingConfirmation"  # SNS's SubscriptionArn for one not confirmed yet


@dataclass(frozen=True)
class Removed:
    removed: int
    pending: int  # unconfirmed subscriptions SNS cannot remove (they lapse)


class AdminNotifications:
    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic = topic_arn

    def _subscriptions(self, email: str) -> Iterator[dict[str, Any]]:
        pages = self._sns.get_paginator("list_subscriptions_by_topic").paginate(
            TopicArn=self._topic)
        for page in pages:
            for subscription in page.get("Subscriptions", []):
                if (subscription.get("Protocol") == PROTOCOL
                        and subscription.get("Endpoint", "").lower() == email.lower()):
                    yield subscription

    def _pending(self, subscription: dict[str, Any]) -> bool:
        arn = subscription["SubscriptionArn"]
        if arn == PENDING:
            return True
        attributes = self._sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        return str(attributes.get("PendingConfirmation", "false")).lower() == "true"

    def subscribe(self, email: str) -> bool:
        """Subscribe ``email``; False if it is subscribed and confirmed already
        (SNS then sends nothing). Otherwise SNS mails the link to confirm (again)."""
        if any(not self._pending(s) for s in self._subscriptions(email)):
            return False
        self._sns.subscribe(TopicArn=self._topic, Protocol=PROTOCOL, Endpoint=email)
        return True

    def unsubscribe(self, email: str) -> Removed:
        removed = pending = 0
        for subscription in list(self._subscriptions(email)):
            if self._pending(subscription):
                pending += 1
                continue
            self._sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
            removed += 1
        return Removed(removed, pending)
