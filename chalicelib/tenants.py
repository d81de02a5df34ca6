"""The tenant record in DynamoDB and the only code that writes it.

Every write is conditional so that a retried or duplicated step leaves the
record as one correct write would have, and a late step can never move a
tenant out of a final status.
"""
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import (
    NotAwaitingDecision,
    NotOffboardable,
    NotRetryable,
    TenantAlreadyFinal,
    TenantConflict,
    TenantNotFound,
    aws_call,
    aws_error_code,
)
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = get_logger(__name__)

SORT_KEY = "tenant"
ONBOARDING = "onboarding"
FINAL_STATUSES = ("active", "rejected", "failed", "timeout")
OFFBOARDING = "offboarding"
OFFBOARDED = "offboarded"
STATUSES = (ONBOARDING,) + FINAL_STATUSES + (OFFBOARDING, OFFBOARDED)
# Offboarding takes a tenant that stays, and purges one that did not.
OFFBOARDABLE = ("active", "rejected", "timeout", "failed")
STATUS_INDEX = "byStatus"  # status (hash) + createdAt (range); see template.json
# Every tenant record by its email, lower-cased: sk (hash: "tenant" on every
# tenant record, so one partition holds them all, and no other item has
# emailKey) + emailKey (range), for an exact or begins_with search.
EMAIL_INDEX = "byEmail"
# Sparse: only records whose outcome event is due but not yet recorded as sent
# carry outcomeDue, so the reconciler finds them without reading every tenant.
OUTCOME_DUE_INDEX = "byOutcomeDue"  # outcomeDue (hash) + updatedAt (range)
# Sparse too: records whose release failed for good, which the reconciler reports.
RELEASE_DUE_INDEX = "byReleaseDue"  # releaseDue (hash) + updatedAt (range)
RELEASE_DUE = "due"
RETRYABLE = ("failed", "timeout")
# The longest reason a record keeps: an admin's, or why onboarding failed.
MAX_REASON_LENGTH = 1000


def email_key(email: str) -> str:
    """How the byEmail index keys an email: lower-cased, so a search ignores case."""
    return email.strip().lower()


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    email: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"tenantId": self.tenant_id, "email": self.email, "name": self.name}


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_ddb(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _key(tenant_id: str) -> dict[str, Any]:
    return _to_ddb({"pk": tenant_id, "sk": SORT_KEY})


def _is_condition_failure(error: ClientError) -> bool:
    return aws_error_code(error) == "ConditionalCheckFailedException"


def _assignments(
    values: dict[str, Any], tag: str
) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """``#<tag>N = :<tag>N`` for each attribute of ``values`` (any name, even a
    reserved word): the names, the placeholder values and the SET clauses."""
    names: dict[str, str] = {}
    placeholders: dict[str, Any] = {}
    sets: list[str] = []
    for index, (attribute, value) in enumerate(values.items()):
        names[f"#{tag}{index}"] = attribute
        placeholders[f":{tag}{index}"] = value
        sets.append(f"#{tag}{index} = :{tag}{index}")
    return names, placeholders, sets


class TenantRepository:
    """Reads and writes tenant records in one table.

    Takes the low-level DynamoDB client: the resource layer costs a cold
    start more imports and model loading for no benefit here.
    """

    def __init__(self, dynamodb_client: "DynamoDBClient", table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table_name = table_name

    def _update_if(self, tenant_id: str, **update: Any) -> dict[str, Any] | None:
        """One conditional UpdateItem: the record as it now is, or None when its
        condition did not hold (nothing was written)."""
        try:
            with aws_call("DynamoDB"):
                response = self._ddb.update_item(
                    TableName=self._table_name, Key=_key(tenant_id), ReturnValues="ALL_NEW",
                    **update,
                )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            return None
        return _from_ddb(response["Attributes"])

    def get(self, tenant_id: str) -> dict[str, Any] | None:
        with aws_call("DynamoDB"):
            response = self._ddb.get_item(
                TableName=self._table_name, Key=_key(tenant_id), ConsistentRead=True
            )
        item = response.get("Item")
        return _from_ddb(item) if item else None

    def require(self, tenant_id: str) -> dict[str, Any]:
        item = self.get(tenant_id)
        if item is None:
            raise TenantNotFound(f"tenant {tenant_id} has no record")
        return item

    def create(self, tenant: NewTenant, now: str) -> dict[str, Any]:
        """Create the record in status ``onboarding``; a retry returns it unchanged."""
        item = {
            "pk": tenant.tenant_id,
            "sk": SORT_KEY,
            "status": ONBOARDING,
            "email": tenant.email,
            "emailKey": email_key(tenant.email),
            "name": tenant.name,
            "createdAt": now,
            "updatedAt": now,
            "subscribers": 0,
        }
        try:
            with aws_call("DynamoDB"):
                self._ddb.put_item(
                    TableName=self._table_name,
                    Item=_to_ddb(item),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            logger.info("created tenant record", extra={"tenantId": tenant.tenant_id})
            return item
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
        existing = self.require(tenant.tenant_id)
        if existing.get("email") != tenant.email:
            raise TenantConflict(
                f"tenant {tenant.tenant_id} already exists for another email address"
            )
        logger.info(
            "tenant record already existed; keeping it",
            extra={"tenantId": tenant.tenant_id},
        )
        return existing

    def set_stripe_customer(self, tenant_id: str, customer_id: str, now: str) -> None:
        self._set_once(tenant_id, {"stripeCustomerId": customer_id}, now)

    def set_contact_list(self, tenant_id: str, place: dict[str, str], now: str) -> None:
        """The contact-list place onboarding made (``ContactListPlace.to_dict``:
        list, listMode, and topic or sesTenant); once set, never another."""
        self._set_once(tenant_id, place, now)

    def _set_once(self, tenant_id: str, values: dict[str, str], now: str) -> None:
        """Set attributes that, once set, must never change to other values."""
        names, placeholders, sets = _assignments(values, "a")
        conditions = [f"(attribute_not_exists({name}) OR {clause})"
                      for name, clause in zip(names, sets, strict=True)]
        written = self._update_if(
            tenant_id,
            UpdateExpression="SET " + ", ".join(sets) + ", updatedAt = :now",
            ConditionExpression=" AND ".join(["attribute_exists(pk)"] + conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_to_ddb({**placeholders, ":now": now}),
        )
        if written is None:
            record = self.require(tenant_id)
            current = {attribute: record.get(attribute) for attribute in values}
            raise TenantConflict(
                f"tenant {tenant_id} already has {current}, refusing to replace it "
                f"with {values}"
            )

    def finish(
        self,
        tenant_id: str,
        status: str,
        now: str,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Move the tenant from ``onboarding`` to a final status; idempotent.

        Repeating the same transition succeeds (and returns the record as it
        is); any other transition out of a final status raises
        ``TenantAlreadyFinal``.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status}")
        names, values, sets = _assignments(dict(sorted((extra or {}).items())), "x")
        # the task token is spent once a final status is set; keep no copy
        removals = " REMOVE pendingDecision, decisionClaim, decideBy"
        written = self._update_if(
            tenant_id,
            UpdateExpression=(
                "SET " + ", ".join(["#s = :s", "updatedAt = :now", "outcomeDue = :s"] + sets)
                + removals
            ),
            ConditionExpression="attribute_exists(pk) AND #s = :onboarding",
            ExpressionAttributeNames={"#s": "status", **names},
            ExpressionAttributeValues=_to_ddb(
                {":s": status, ":now": now, ":onboarding": ONBOARDING, **values}
            ),
        )
        if written is not None:
            return written
        current = self.require(tenant_id)
        if current.get("status") == status:
            logger.info(
                "tenant already %s; nothing to change",
                status,
                extra={"tenantId": tenant_id},
            )
            return current
        raise TenantAlreadyFinal(
            f"tenant {tenant_id} is already {current.get('status')}; "
            f"not moving it to {status}"
        )

    def mark_notified(self, tenant_id: str, detail_type: str, now: str) -> None:
        """Remember that the outcome event went out, so a retry does not resend it."""
        with aws_call("DynamoDB"):
            self._ddb.update_item(
                TableName=self._table_name,
                Key=_key(tenant_id),
                UpdateExpression="SET outcomeNotifiedAt = :now, outcomeEvent = :d REMOVE outcomeDue",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_to_ddb({":now": now, ":d": detail_type}),
            )

    # --- the outcome mail (outcome_mail.py) ------------------------------------------
    def claim_outcome_mail(self, tenant_id: str, key: str, state: str, now: str,
                           until: str | None = None) -> dict[str, Any] | None:
        """Take the outcome mail ``key`` on (``outcomeMail``, in ``state``; ``until``:
        when the claiming invocation is over, whatever became of it): the record
        as it now is, or None when that key was taken on already (a retry)."""
        claim = {"key": key, "state": state, "at": now, **({"until": until} if until else {})}
        return self._update_if(
            tenant_id,
            UpdateExpression="SET outcomeMail = :m",
            ConditionExpression="attribute_exists(pk) AND "
                                "(attribute_not_exists(outcomeMail) OR outcomeMail.#k <> :key)",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues=_to_ddb({":m": claim, ":key": key}),
        )

    def settle_outcome_mail(self, tenant_id: str, key: str, state: str, now: str,
                            detail: dict[str, str] | None = None) -> bool:
        """What became of the outcome mail ``key`` we are sending; False when the
        record holds another mail's (a later onboarding attempt's)."""
        return self._update_if(
            tenant_id,
            UpdateExpression="SET outcomeMail = :m",
            ConditionExpression="outcomeMail.#k = :key",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues=_to_ddb(
                {":m": {**(detail or {}), "key": key, "state": state, "at": now}, ":key": key}),
        ) is not None

    def release_outcome_mail(self, tenant_id: str, key: str) -> bool:
        """Give up our claim on the outcome mail ``key``: SES did not take it, so a
        retry sends it."""
        return self._update_if(
            tenant_id,
            UpdateExpression="REMOVE outcomeMail",
            ConditionExpression="outcomeMail.#k = :key AND outcomeMail.#s = :sending",
            ExpressionAttributeNames={"#k": "key", "#s": "state"},
            ExpressionAttributeValues=_to_ddb({":key": key, ":sending": "sending"}),
        ) is not None

    # --- the admin's decision -----------------------------------------------------
    def record_pending_decision(
        self, tenant_id: str, pending: dict[str, Any], replaces: str | None
    ) -> bool:
        """Keep the waiting execution's task token (``pending``) with the tenant.

        ``replaces`` is the token read before (None: no pending decision), so
        two repeats of the wait task cannot overwrite each other unseen:
        returns False when the record changed meanwhile (read it again).
        A new token makes any claim on the old one void.
        """
        if replaces is None:
            expected, values = "attribute_not_exists(pendingDecision)", {}
        else:
            expected, values = "pendingDecision.taskToken = :old", {":old": replaces}
        written = self._update_if(
            tenant_id,
            UpdateExpression=(
                "SET pendingDecision = :p, decideBy = :d, updatedAt = :now "
                "REMOVE decisionClaim"
            ),
            ConditionExpression=f"attribute_exists(pk) AND #s = :onboarding AND {expected}",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb({
                ":p": pending, ":d": pending["decideBy"], ":now": pending["requestedAt"],
                ":onboarding": ONBOARDING, **values,
            }),
        )
        if written is not None:
            return True
        current = self.get(tenant_id)
        if current is None:
            raise TenantNotFound(f"tenant {tenant_id} has no record")
        if current.get("status") != ONBOARDING:
            raise TenantAlreadyFinal(
                f"tenant {tenant_id} is {current.get('status')}; it awaits no decision"
            )
        return False

    def mark_pending(self, tenant_id: str, task_token: str, flag: str, now: str) -> bool:
        """Remember on the pending decision that ``flag`` (requestNotifiedAt,
        reminderSentAt) happened; False if that wait is over or was replaced
        (decided, timed out or repeated meanwhile)."""
        return self._update_if(
            tenant_id,
            UpdateExpression="SET pendingDecision.#f = :now",
            ConditionExpression="pendingDecision.taskToken = :t",
            ExpressionAttributeNames={"#f": flag},
            ExpressionAttributeValues=_to_ddb({":now": now, ":t": task_token}),
        ) is not None

    def claim_decision(
        self, tenant_id: str, claim: dict[str, Any], stale_before: str
    ) -> dict[str, Any]:
        """Let exactly one admin decide: returns the pending decision claimed.

        ``claim["claimedAt"]`` dates the claim; one older than ``stale_before``
        (its holder died between claiming and delivering) may be taken over.
        """
        claimed = self._update_if(
            tenant_id,
            UpdateExpression="SET decisionClaim = :c",
            ConditionExpression=(
                "attribute_exists(pk) AND #s = :onboarding AND "
                "attribute_exists(pendingDecision) AND "
                "(attribute_not_exists(decisionClaim) OR decisionClaim.claimedAt < :stale)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb(
                {":c": claim, ":onboarding": ONBOARDING, ":stale": stale_before}
            ),
        )
        if claimed is not None:
            pending: dict[str, Any] = claimed["pendingDecision"]
            return pending
        current = self.get(tenant_id)
        if current is None:
            raise TenantNotFound(f"tenant {tenant_id} does not exist")
        raise NotAwaitingDecision(
            tenant_id, current.get("status"), in_progress="decisionClaim" in current
        )

    def release_claim(self, tenant_id: str, claim_id: str) -> bool:
        """Undo our claim whose decision could not be delivered, so it can be
        retried; another admin's claim (ours expired and was taken) stays."""
        return self._update_if(
            tenant_id,
            UpdateExpression="REMOVE decisionClaim",
            ConditionExpression="decisionClaim.claimId = :mine",
            ExpressionAttributeValues=_to_ddb({":mine": claim_id}),
        ) is not None

    # --- what a tenant gives back -----------------------------------------------------
    def mark_released(
        self, tenant_id: str, what: str, details: dict[str, Any], removes: tuple[str, ...] = ()
    ) -> None:
        """Record that ``what`` (contactList, stripeCustomer, user) was given back,
        when and what it was; the attributes that named it go (``removes``), so
        nothing on the record says the tenant still holds it."""
        with aws_call("DynamoDB"):
            self._ddb.update_item(
                TableName=self._table_name, Key=_key(tenant_id),
                UpdateExpression="SET released = if_not_exists(released, :empty)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_to_ddb({":empty": {}}),
            )
        names = {"#w": what, **{f"#r{i}": name for i, name in enumerate(removes)}}
        removal = (" REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))) if removes else ""
        with aws_call("DynamoDB"):
            self._ddb.update_item(
                TableName=self._table_name, Key=_key(tenant_id),
                UpdateExpression="SET released.#w = :d, updatedAt = :now" + removal,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_ddb({":d": details, ":now": details["at"]}),
            )

    def record_release_failure(self, tenant_id: str, failure: dict[str, Any]) -> bool:
        """A release that failed for good: kept on the record (``releaseFailure``) and
        listed by the sparse byReleaseDue index, which the reconciler reports from,
        until the tenant is offboarded (which purges what it holds).

        Not once offboarding has begun: a late retry of the step that reported
        it must not bring the report back after the offboarding purged it.
        False when nothing was written."""
        return self._update_if(
            tenant_id,
            UpdateExpression="SET releaseFailure = :f, releaseDue = :due",
            ConditionExpression="attribute_exists(pk) AND NOT #s IN (:offboarding, :offboarded)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb({
                ":f": failure, ":due": RELEASE_DUE, ":offboarding": OFFBOARDING,
                ":offboarded": OFFBOARDED}),
        ) is not None

    # --- offboarding --------------------------------------------------------------
    def begin_offboarding(
        self, tenant_id: str, record: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        """Move the tenant to ``offboarding``, conditional on the status ``record``
        shows (two requests at once: one wins); NotOffboardable otherwise."""
        previous = record.get("status")
        if previous not in OFFBOARDABLE:
            raise NotOffboardable(tenant_id, previous)
        updated = self._update_if(
            tenant_id,
            UpdateExpression=(
                "SET #s = :offboarding, offboarding = :r, updatedAt = :now "
                "REMOVE offboardingFailure"
            ),
            ConditionExpression="#s = :previous",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb({
                ":offboarding": OFFBOARDING, ":r": {**request, "previousStatus": previous},
                ":now": request["requestedAt"], ":previous": previous,
            }),
        )
        if updated is not None:
            return updated
        current = self.get(tenant_id) or {}
        raise NotOffboardable(tenant_id, current.get("status"))

    def finish_offboarding(self, tenant_id: str, now: str) -> dict[str, Any]:
        """``offboarding`` -> ``offboarded``, keeping the record (a soft delete)."""
        updated = self._update_if(
            tenant_id,
            UpdateExpression=(
                "SET #s = :offboarded, offboardedAt = :now, updatedAt = :now, "
                "offboardedBy = offboarding.requestedBy, offboardReason = offboarding.reason "
                "REMOVE releaseFailure, releaseDue"  # offboarding purged what was left
            ),
            ConditionExpression="#s = :offboarding",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb({
                ":offboarded": OFFBOARDED, ":offboarding": OFFBOARDING, ":now": now,
            }),
        )
        if updated is not None:
            return updated
        current = self.require(tenant_id)
        if current.get("status") == OFFBOARDED:
            return current
        raise TenantAlreadyFinal(f"tenant {tenant_id} is {current.get('status')}, not offboarding")

    def mark_offboarding_notified(self, tenant_id: str, detail_type: str, now: str) -> None:
        with aws_call("DynamoDB"):
            self._ddb.update_item(
                TableName=self._table_name, Key=_key(tenant_id),
                UpdateExpression="SET offboarding.notifiedEvent = :e, offboarding.notifiedAt = :now",
                ConditionExpression="attribute_exists(offboarding)",
                ExpressionAttributeValues=_to_ddb({":e": detail_type, ":now": now}),
            )

    def fail_offboarding(self, tenant_id: str, reason: str, now: str) -> dict[str, Any]:
        """Back to the status it had, with why offboarding failed; an admin may ask again."""
        current = self.require(tenant_id)
        if current.get("status") != OFFBOARDING:
            return current
        previous = (current.get("offboarding") or {}).get("previousStatus", "active")
        updated = self._update_if(
            tenant_id,
            UpdateExpression="SET #s = :previous, offboardingFailure = :f, updatedAt = :now",
            ConditionExpression="#s = :offboarding",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb({
                ":previous": previous, ":offboarding": OFFBOARDING, ":now": now,
                ":f": {"reason": reason, "at": now},
            }),
        )
        return updated if updated is not None else self.require(tenant_id)

    # --- retry ---------------------------------------------------------------------
    def begin_retry(
        self, tenant_id: str, record: dict[str, Any], attempt: int, by: str, now: str
    ) -> dict[str, Any]:
        """Move a failed or timed-out tenant back to ``onboarding`` as ``attempt``.

        Conditional on the record being as ``record`` shows it (status and
        attempt), so two retries at once resolve once. The previous outcome
        goes into ``retries`` (the audit), and what the new attempt will set
        again is cleared. Raises NotRetryable when the record moved meanwhile.
        """
        previous = record.get("status")
        audit = {"attempt": attempt, "retriedBy": by, "retriedAt": now, "previousStatus": previous}
        reason = record.get("failureReason") or (record.get("decision") or {}).get("reason")
        if reason:
            audit["previousReason"] = reason
        if record.get("released"):
            audit["released"] = record["released"]  # made again by the new attempt
        prior = attempt - 1
        updated = self._update_if(
            tenant_id,
            UpdateExpression=(
                "SET #s = :onboarding, attempts = :attempt, updatedAt = :now, "
                "retries = list_append(if_not_exists(retries, :none), :audit) "
                "REMOVE failureReason, decision, outcomeNotifiedAt, outcomeEvent, "
                "outcomeDue, pendingDecision, decideBy, decisionClaim, released, "
                "releaseFailure, releaseDue"
            ),
            # the first attempt has no attempts attribute
            ConditionExpression="#s = :previous AND " + (
                "attempts = :prior" if prior > 1 else "attribute_not_exists(attempts)"),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_to_ddb({
                ":onboarding": ONBOARDING, ":attempt": attempt, ":now": now,
                ":none": [], ":audit": [audit], ":previous": previous,
                **({":prior": prior} if prior > 1 else {}),
            }),
        )
        if updated is not None:
            return updated
        current = self.get(tenant_id) or {}
        raise NotRetryable(tenant_id, current.get("status"))

    def undo_retry(self, tenant_id: str, record: dict[str, Any], attempt: int) -> None:
        """Put back what begin_retry changed when its execution could not start."""
        restored = {k: record[k] for k in ("failureReason", "decision", "outcomeNotifiedAt",
                                            "outcomeEvent", "outcomeDue", "released",
                                            "releaseFailure", "releaseDue") if k in record}
        names, values, sets = _assignments(dict(sorted(restored.items())), "r")
        names["#s"] = "status"
        values.update({":previous": record["status"], ":onboarding": ONBOARDING, ":attempt": attempt})
        sets.insert(0, "#s = :previous")
        if "attempts" in record:
            values[":prior"] = record["attempts"]
            sets.append("attempts = :prior")
            removal = " REMOVE retries[" + str(len(record.get("retries") or [])) + "]"
        else:
            removal = " REMOVE attempts, retries"
        with aws_call("DynamoDB"):
            self._ddb.update_item(
                TableName=self._table_name,
                Key=_key(tenant_id),
                UpdateExpression="SET " + ", ".join(sets) + removal,
                ConditionExpression="#s = :onboarding AND attempts = :attempt",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_ddb(values),
            )

    def list_by_status(
        self, status: str, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of tenants in a status, newest first, from the index."""
        return self._page(self._status_query(status, ScanIndexForward=False, Limit=limit),
                          start_key)

    def all_in_status(self, status: str) -> list[dict[str, Any]]:
        """Every tenant in a status, from the byStatus index, page after page
        (its projection: about 200 bytes a tenant, 5,000 tenants a 1 MB page)."""
        return [_from_ddb(item) for response in self._pages(self._status_query(status))
                for item in response.get("Items", [])]

    def count_by_status(self, status: str) -> int:
        """How many tenants are in a status: a Query of the byStatus index with
        Select=COUNT (DynamoDB counts; no item comes back)."""
        return sum(int(response.get("Count", 0))
                   for response in self._pages(self._status_query(status, Select="COUNT")))

    def find_by_email(
        self, key: str, exact: bool, limit: int, start_key: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of tenants whose lower-cased email is ``key`` (``exact``) or
        begins with it, in email order, from the byEmail index."""
        condition = "emailKey = :e" if exact else "begins_with(emailKey, :e)"
        return self._page({
            "TableName": self._table_name,
            "IndexName": EMAIL_INDEX,
            "KeyConditionExpression": f"sk = :t AND {condition}",
            "ExpressionAttributeValues": _to_ddb({":t": SORT_KEY, ":e": key}),
            "Limit": limit,
        }, start_key)

    def _status_query(self, status: str, **more: Any) -> dict[str, Any]:
        return {
            "TableName": self._table_name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _to_ddb({":s": status}),
            **more,
        }

    def _page(
        self, query: dict[str, Any], start_key: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One Query's items, and the plain key the next page starts after (None: the last)."""
        if start_key:
            query["ExclusiveStartKey"] = _to_ddb(start_key)
        with aws_call("DynamoDB"):
            response = self._ddb.query(**query)
        last = response.get("LastEvaluatedKey")
        return (
            [_from_ddb(item) for item in response.get("Items", [])],
            _from_ddb(last) if last else None,
        )

    def _pages(self, query: dict[str, Any]) -> Iterator[Mapping[str, Any]]:
        """Every response of a Query, page after page."""
        while True:
            with aws_call("DynamoDB"):
                response = self._ddb.query(**query)
            yield response
            if not response.get("LastEvaluatedKey"):
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def set_email_key(self, tenant_id: str, email: str) -> bool:
        """Give a record from before emailKey its key, from its own email; False
        when it has one already (or its email changed meanwhile)."""
        return self._update_if(
            tenant_id,
            UpdateExpression="SET emailKey = :k",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(emailKey) AND email = :e",
            ExpressionAttributeValues=_to_ddb({":k": email_key(email), ":e": email}),
        ) is not None

    def ids_in_index(self, index: str, attribute: str, value: str) -> list[str]:
        """Every tenant id in one partition of an index (the reconciler's sweeps)."""
        return [item["pk"]["S"] for response in self._pages({
            "TableName": self._table_name,
            "IndexName": index,
            "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": attribute},
            "ExpressionAttributeValues": _to_ddb({":v": value}),
        }) for item in response.get("Items", [])]
