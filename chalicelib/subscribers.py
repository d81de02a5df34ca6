"""A tenant's subscribers: items of the tenant in the tenant table, counted on its record.

Why in the tenant table, under the tenant's key (``pk`` = ``<tenantId>#subscribers``,
``sk`` = the email, lower-cased), and not in a table of their own: every add
and remove is ONE DynamoDB transaction of the subscriber item (with its
condition) and the ``subscribers`` counter on the tenant record, so the count
can never drift from the items; a tenant's subscribers are one partition, read
and deleted by a Query of its key; and the record and its subscribers are
created, retained and purged together, with no second table to provision,
protect and grant. The partition is the tenant's id with ``#subscribers``, so
IAM can let the API and the release task put and delete subscriber items and
nothing else (``dynamodb:LeadingKeys`` ``*#subscribers``). A sparse index
(``bySubscribedAt``: ``subscriberOf`` + ``subscribedAt``) lists them newest
first; only subscriber items carry ``subscriberOf``.

The email is stored lower-cased in the key (``ADA@`` and ``ada@`` are one
subscriber) and as given in ``email``. A repeated add finds the item and
counts nothing; 50 concurrent adds of the same 10 emails count 10.
"""
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.clock import utc_now
from chalicelib.errors import TenantNotActive, aws_call, aws_error_code
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef, UpdateTypeDef

logger = get_logger(__name__)

PARTITION = "#subscribers"  # a tenant's subscribers: pk = <tenantId>#subscribers
SUBSCRIBED_INDEX = "bySubscribedAt"  # subscriberOf (hash) + subscribedAt (range); sparse
MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit
MAX_LOCAL_PART_LENGTH = 64
MAX_SUBSCRIBER_NAME_LENGTH = 128
# A DynamoDB transaction holds at most 100 items: 99 subscribers and the counter.
TRANSACTION_SUBSCRIBERS = 99
CONFLICT_RETRIES = 8
# Not printable and not ink: controls, format characters (zero-width, direction
# marks), separators (spaces, line and paragraph), private use, unassigned.
_INVISIBLE = {"Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp"}


class InvalidSubscriber(ValueError):
    """An email or name no subscriber can have; the message is the sentence to show."""


def subscriber_key(email: str) -> str:
    """The sort key: one subscriber an address, whatever its case."""
    return email.lower()


def subscribers_of(tenant_id: str) -> str:
    """The partition key of the tenant's subscribers."""
    return tenant_id + PARTITION


def check_email(value: Any) -> str:
    """The email as given, or InvalidSubscriber saying what is wrong with it."""
    if not isinstance(value, str) or not value:
        raise InvalidSubscriber("email is required")
    if any(unicodedata.category(c) in _INVISIBLE for c in value):
        raise InvalidSubscriber("email must not contain spaces, control or invisible characters")
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidSubscriber(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    if value.count("@") != 1:
        raise InvalidSubscriber("email must contain exactly one @")
    local, domain = value.split("@")
    if not local or not domain:
        raise InvalidSubscriber("email needs a name before the @ and a domain after it")
    if len(local) > MAX_LOCAL_PART_LENGTH:
        raise InvalidSubscriber(
            f"the part of the email before the @ must be at most {MAX_LOCAL_PART_LENGTH} characters")
    if "." not in domain.strip(".") or domain.startswith(".") or domain.endswith("."):
        raise InvalidSubscriber("the domain of the email (after the @) must contain a dot, "
                                "as in example.com")
    return value


def check_name(value: Any) -> str | None:
    """A subscriber's optional name, trimmed; None when absent or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSubscriber("name must be a string")
    if len(value) > MAX_SUBSCRIBER_NAME_LENGTH:
        raise InvalidSubscriber(f"name must be at most {MAX_SUBSCRIBER_NAME_LENGTH} characters")
    if any(unicodedata.category(c) in _INVISIBLE - {"Zs"} for c in value):
        raise InvalidSubscriber("name must not contain control or invisible characters")
    return value.strip() or None


@dataclass(frozen=True)
class NewSubscriber:
    email: str  # as given
    name: str | None = None

    @property
    def key(self) -> str:
        return subscriber_key(self.email)


def subscriber_view(item: dict[str, Any]) -> dict[str, Any]:
    """A subscriber as the tenant sees it (DynamoDB's typed values, plain)."""
    view = {"email": item["email"]["S"], "subscribedAt": item["subscribedAt"]["S"]}
    if "name" in item:
        view["name"] = item["name"]["S"]
    return view


class SubscriberStore:
    def __init__(self, dynamodb_client: "DynamoDBClient", table_name: str,
                 clock: Callable[[], str] = utc_now,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._clock = clock
        self._sleep = sleep

    # --- adding ----------------------------------------------------------------------
    def add_all(self, tenant_id: str, subscribers: Iterable[NewSubscriber]) -> dict[str, bool]:
        """Add each subscriber the tenant does not have yet: by key (the lower-cased
        email), whether it was added now (True) or was there already (False).

        Up to 99 subscribers a transaction with the counter; a subscriber that
        exists fails its condition, which cancels the transaction and names it:
        it is marked existing and the rest go again. However often repeated,
        each subscriber is added and counted once. TenantNotActive when the
        tenant is not (any longer) active: nothing of that transaction is written.
        """
        wanted: dict[str, NewSubscriber] = {}
        for subscriber in subscribers:
            wanted.setdefault(subscriber.key, subscriber)
        added: dict[str, bool] = {}
        pending = list(wanted.values())
        for start in range(0, len(pending), TRANSACTION_SUBSCRIBERS):
            added.update(self._add_batch(tenant_id, pending[start:start + TRANSACTION_SUBSCRIBERS]))
        return added

    def _add_batch(self, tenant_id: str, batch: list[NewSubscriber]) -> dict[str, bool]:
        result: dict[str, bool] = {}
        conflicts = 0
        while batch:
            now = self._clock()
            items: list[TransactWriteItemTypeDef] = [
                {"Put": {"TableName": self._table, "Item": self._item(tenant_id, s, now),
                         "ConditionExpression": "attribute_not_exists(pk)"}} for s in batch]
            items.append(self._count(tenant_id, len(batch), active=True))
            reasons = self._transact(items)
            if reasons is None:
                result.update({s.key: True for s in batch})
                return result
            if _failed(reasons[-1]):
                raise TenantNotActive(tenant_id)
            existing = {s.key for s, reason in zip(batch, reasons, strict=False) if _failed(reason)}
            if not existing:  # another transaction touched one of them: try again
                conflicts += 1
                self._back_off(conflicts)
            result.update({key: False for key in existing})
            batch = [s for s in batch if s.key not in existing]
        return result

    def _item(self, tenant_id: str, subscriber: NewSubscriber, now: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": subscribers_of(tenant_id)}, "sk": {"S": subscriber.key},
            "email": {"S": subscriber.email}, "subscribedAt": {"S": now},
            "subscriberOf": {"S": tenant_id},
        }
        if subscriber.name:
            item["name"] = {"S": subscriber.name}
        return item

    # --- removing --------------------------------------------------------------------
    def remove(self, tenant_id: str, email: str) -> bool:
        """Remove one subscriber (and count it); False when the tenant has none by that email."""
        conflicts = 0
        while True:
            reasons = self._transact([
                {"Delete": {"TableName": self._table,
                            "Key": _key(subscribers_of(tenant_id), subscriber_key(email)),
                            "ConditionExpression": "attribute_exists(pk)"}},
                self._count(tenant_id, -1, active=True),
            ])
            if reasons is None:
                return True
            if _failed(reasons[1]):
                raise TenantNotActive(tenant_id)
            if _failed(reasons[0]):
                return False
            conflicts += 1
            self._back_off(conflicts)

    def remove_all(self, tenant_id: str) -> int:
        """Every subscriber of the tenant (giving back): up to 99 a transaction
        with the counter, until none is left. A crash in between leaves the rest
        and an exact count; running it again finishes the job."""
        removed = conflicts = 0
        while True:
            with aws_call("DynamoDB"):
                found = self._ddb.query(
                    TableName=self._table, ConsistentRead=True, Limit=TRANSACTION_SUBSCRIBERS,
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": subscribers_of(tenant_id)}},
                    ProjectionExpression="pk, sk",
                )["Items"]
            if not found:
                return removed
            items: list[TransactWriteItemTypeDef] = [
                {"Delete": {"TableName": self._table, "Key": {"pk": key["pk"], "sk": key["sk"]},
                            "ConditionExpression": "attribute_exists(pk)"}} for key in found]
            items.append(self._count(tenant_id, -len(found), active=False))
            if self._transact(items) is None:
                removed += len(found)
            else:  # one went meanwhile (another run of this release): read again
                conflicts += 1
                self._back_off(conflicts)

    # --- reading ---------------------------------------------------------------------
    def page(self, tenant_id: str, limit: int, start: dict[str, Any] | None = None
             ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the tenant's subscribers, newest first, and where the next begins."""
        query: dict[str, Any] = {
            "TableName": self._table, "IndexName": SUBSCRIBED_INDEX, "Limit": limit,
            "KeyConditionExpression": "subscriberOf = :t", "ScanIndexForward": False,
            "ExpressionAttributeValues": {":t": {"S": tenant_id}},
        }
        if start:
            query["ExclusiveStartKey"] = start
        with aws_call("DynamoDB"):
            response = self._ddb.query(**query)
        return ([subscriber_view(item) for item in response.get("Items", [])],
                response.get("LastEvaluatedKey"))

    def get(self, tenant_id: str, email: str) -> dict[str, Any] | None:
        with aws_call("DynamoDB"):
            item = self._ddb.get_item(
                TableName=self._table, ConsistentRead=True,
                Key=_key(subscribers_of(tenant_id), subscriber_key(email))).get("Item")
        return subscriber_view(item) if item else None

    # --- one transaction ---------------------------------------------------------------
    def _count(self, tenant_id: str, change: int, active: bool) -> "TransactWriteItemTypeDef":
        """The counter's part of a transaction: on the tenant record, which must
        exist (and be active, for the tenant's own changes)."""
        values: dict[str, Any] = {":zero": {"N": "0"}, ":change": {"N": str(change)}}
        update: UpdateTypeDef = {
            "TableName": self._table, "Key": _key(tenant_id, "tenant"),
            "UpdateExpression": "SET subscribers = if_not_exists(subscribers, :zero) + :change",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": values,
        }
        if active:
            update["ConditionExpression"] += " AND #s = :active"
            update["ExpressionAttributeNames"] = {"#s": "status"}
            values[":active"] = {"S": "active"}
        return {"Update": update}

    def _transact(self, items: "list[TransactWriteItemTypeDef]") -> list[dict[str, Any]] | None:
        """None when written; each item's cancellation reason when cancelled."""
        try:
            with aws_call("DynamoDB"):
                self._ddb.transact_write_items(TransactItems=items)
        except ClientError as error:
            if aws_error_code(error) != "TransactionCanceledException":
                raise
            reasons = [dict(reason) for reason in error.response.get("CancellationReasons") or []]
            return reasons + [{}] * (len(items) - len(reasons))
        return None

    def _back_off(self, conflicts: int) -> None:
        """Another transaction held one of the items: wait a little, at most a few times."""
        if conflicts > CONFLICT_RETRIES:
            from chalicelib.errors import AwsServiceUnavailable

            raise AwsServiceUnavailable("DynamoDB kept cancelling the transaction (conflicts)",
                                        service="DynamoDB")
        self._sleep(min(0.02 * 2 ** conflicts, 0.5))


def _key(tenant_id: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": tenant_id}, "sk": {"S": sort_key}}


def _failed(reason: dict[str, Any]) -> bool:
    return reason.get("Code") == "ConditionalCheckFailed"
