"""Admin notifications on moto (scripts/local/patching.py): rules to SNS, SNS to email.

In AWS, an EventBridge rule whose target is an SNS topic publishes each
matching event to it, shaped by the target's InputTransformer; an email
subscription starts pending, SNS mails its endpoint a link to confirm it,
and only a confirmed subscription is mailed the topic's messages.

moto, as released, raises NotImplementedError from ``Rule.send_to_targets``
for an SNS target (so PutEvents itself fails), confirms an email
subscription at once, takes any token in ConfirmSubscription, and mails
nothing. Here:
- a rule's SNS target gets its input transformed as EventBridge does for a
  text template: each ``<variable>`` replaced once by its value, so a
  tenant's string is data (a company called ``<email>`` stays so), and
  published to the topic;
- an email subscription starts pending (``PendingConfirmation`` true) and
  its confirmation goes to the outbox, with a link to the local AWS
  (``/confirmation.html``, as SNS's own page is named) that confirms it;
  subscribing again while pending sends it again;
- ConfirmSubscription takes only the token that was mailed;
- each message to a confirmed email subscription goes to the outbox:
  ``to``, ``subject``, ``body``, ``sentAt``.
The outbox and the link's base URL are set by ``mail_to`` (the local stack:
``.local/outbox.jsonl``); without one, nothing is mailed, as before.
"""
import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from scripts.local.patching import replace

EMAIL_PROTOCOLS = ("email", "email-json")
DEFAULT_SUBJECT = "AWS Notification Message"  # SNS's, when a publish names none
CONFIRMATION_SUBJECT = "AWS Notification - Subscription Confirmation"
CONFIRMATION_PATH = "/confirmation.html"
_VARIABLE = re.compile(r"<([A-Za-z0-9_.-]+)>")
_lock = threading.Lock()
_mail: dict[str, Any] = {"outbox": None, "base_url": "https://sns.us-east-1.amazonaws.com"}
_tokens: dict[str, Any] = {}  # confirmation token -> its subscription


class ConfirmationError(ValueError):
    """A confirmation link or token SNS would refuse."""


def mail_to(outbox: Callable[[dict[str, Any]], None] | None, base_url: str | None = None) -> None:
    """Where SNS's email goes (None: nowhere), and the local AWS's URL for the
    confirmation links it mails."""
    _mail["outbox"] = outbox
    if base_url:
        _mail["base_url"] = base_url.rstrip("/")


def _send(to: str, subject: str, body: str) -> None:
    outbox = _mail["outbox"]
    if outbox is not None:
        sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        outbox({"to": to, "subject": subject, "body": body, "sentAt": sent_at})


# --- EventBridge -> SNS ---------------------------------------------------------------------
def transformed_text(transformer: dict[str, Any], event: dict[str, Any], rule: Any) -> str:
    """A text InputTemplate filled in as EventBridge fills it: each variable
    once, a string as it is, any other value as JSON, a path the event lacks
    as nothing."""
    values: dict[str, str] = {
        "aws.events.rule-name": rule.name,
        "aws.events.rule-arn": rule.arn,
    }
    for variable, path in (transformer.get("InputPathsMap") or {}).items():
        found = _at_path(event, path)
        values[variable] = ("" if found is None else found if isinstance(found, str)
                            else json.dumps(found))
    template = transformer.get("InputTemplate") or ""
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _at_path(event: dict[str, Any], path: str) -> Any:
    """``$.detail.name``: the dot notation EventBridge takes."""
    value: Any = event
    for key in path.removeprefix("$").lstrip(".").split(".") if path != "$" else []:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def deliver_rules_to_sns_topics() -> None:
    from moto.events.models import Rule
    from moto.sns.models import sns_backends
    from moto.utilities.arns import parse_arn

    def build(moto_send: Callable[..., Any]) -> Callable[..., Any]:
        def send_to_targets(rule: Any, original_event: dict[str, Any],
                            transform_input: bool = True) -> None:
            to_topics = [t for t in rule.targets if parse_arn(t["Arn"]).service == "sns"]
            if not to_topics:
                return moto_send(rule, original_event, transform_input)
            if not rule.event_pattern.matches_event(original_event):
                return None
            for target in to_topics:
                transformer = target.get("InputTransformer")
                if transformer and transform_input:
                    template = (transformer.get("InputTemplate") or "").strip()
                    if template.startswith(("{", "[")):
                        raise NotImplementedError(
                            "the local stack fills in text InputTemplates only, not JSON ones")
                    message = transformed_text(transformer, original_event, rule)
                elif "Input" in target:
                    message = target["Input"]
                else:
                    message = json.dumps({k: v for k, v in original_event.items()
                                          if k != "ingestion-time"})
                arn = parse_arn(target["Arn"])
                sns_backends[arn.account][arn.region].publish(message, arn=target["Arn"])
            others = [t for t in rule.targets if t not in to_topics]
            if others:
                rest = copy.copy(rule)
                rest.targets = others
                moto_send(rest, original_event, transform_input)
            return None

        return send_to_targets

    replace(Rule, "send_to_targets", build)


# --- SNS email ------------------------------------------------------------------------------
def _pending(subscription: Any) -> bool:
    return bool(subscription.attributes.get("PendingConfirmation"))


def _ask_to_confirm(subscription: Any) -> None:
    token = getattr(subscription, "local_confirmation_token", None)
    if token is None:
        token = subscription.local_confirmation_token = secrets.token_hex(32)
        _tokens[token] = subscription
    link = _mail["base_url"] + CONFIRMATION_PATH + "?" + urlencode(
        {"TopicArn": subscription.topic.arn, "Token": token, "Endpoint": subscription.endpoint})
    name = subscription.topic.display_name or subscription.topic.name
    _send(subscription.endpoint, CONFIRMATION_SUBJECT,
          f"You were subscribed to {name}, the SNS topic\n{subscription.topic.arn}\n\n"
          "Nothing is sent to you until you confirm. To confirm, open this link:\n"
          f"{link}\n\nIf you did not expect this, ignore this message.\n")


def confirm(topic_arn: str, token: str) -> Any:
    """The subscription the token was mailed for, confirmed (again, harmlessly);
    ConfirmationError for a token SNS never sent for that topic."""
    with _lock:
        subscription = _tokens.get(token)
        if subscription is None or subscription.topic.arn != topic_arn:
            raise ConfirmationError("Invalid parameter: Token")
        subscription.attributes["PendingConfirmation"] = False
        subscription.attributes["ConfirmationWasAuthenticated"] = True
        subscription.confirmed = True
        return subscription


def mail_sns_email_like_aws() -> None:
    from moto.sns.exceptions import SNSInvalidParameter
    from moto.sns.models import SNSBackend, Subscription
    from moto.sns.responses import SNSResponse

    def pending_until_confirmed(moto_subscribe: Callable[..., Any]) -> Callable[..., Any]:
        def subscribe(backend: Any, topic_arn: str, endpoint: str, protocol: str) -> Any:
            if protocol not in EMAIL_PROTOCOLS:
                return moto_subscribe(backend, topic_arn, endpoint, protocol)
            with _lock:
                existing = backend._find_subscription(topic_arn, endpoint, protocol)
                subscription = moto_subscribe(backend, topic_arn, endpoint, protocol)
                if existing is None:
                    subscription.attributes["PendingConfirmation"] = True
                    subscription.attributes["ConfirmationWasAuthenticated"] = False
                if _pending(subscription):
                    _ask_to_confirm(subscription)
                return subscription

        return subscribe

    def mailed_when_confirmed(moto_publish: Callable[..., Any]) -> Callable[..., Any]:
        def publish(subscription: Any, message: str, message_id: str, subject: str | None = None,
                    *args: Any, **kwargs: Any) -> None:
            if subscription.protocol not in EMAIL_PROTOCOLS:
                return moto_publish(subscription, message, message_id, subject, *args, **kwargs)
            if _pending(subscription):
                return None
            if subscription.protocol == "email-json":
                message = json.dumps(subscription.get_post_data(message, message_id, subject))
            _send(subscription.endpoint, subject or DEFAULT_SUBJECT, message)
            return None

        return publish

    def only_the_mailed_token(moto_confirm: Callable[..., Any]) -> Callable[..., Any]:
        def confirm_subscription(response: Any) -> Any:
            from moto.core.responses import ActionResult

            try:
                subscription = confirm(response._get_param("TopicArn"),
                                       response._get_param("Token"))
            except ConfirmationError as error:
                raise SNSInvalidParameter(str(error)) from None
            return ActionResult({"SubscriptionArn": subscription.arn})

        return confirm_subscription

    replace(SNSBackend, "subscribe", pending_until_confirmed)
    replace(Subscription, "publish", mailed_when_confirmed)
    replace(SNSResponse, "confirm_subscription", only_the_mailed_token)


def notify_admins_like_aws() -> None:
    """Both halves: a rule's SNS target, and SNS's email."""
    deliver_rules_to_sns_topics()
    mail_sns_email_like_aws()
