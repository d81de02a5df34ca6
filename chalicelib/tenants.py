"""The tenant record in DynamoDB and the only code that writes it.

Every write is conditional so that a retried or duplicated step leaves the
record as one correct write would have, and a late step can never move a
tenant out of a final status.
"""
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import (
    TenantAlreadyFinal,
    TenantConflict,
    TenantNotFound,
    aws_call,
    aws_error_code,
)

logger = logging.getLogger(__name__)

SORT_KEY = "tenant"
ONBOARDING = "onboarding"
FINAL_STATUSES = ("active", "rejected", "failed", "timeout")


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    email: str
    name: str

    def to_dict(self) -> Dict[str, str]:
        return {"tenantId": self.tenant_id, "email": self.email, "name": self.name}


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_ddb(values: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def _from_ddb(item: Dict[str, Any]) -> Dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _key(tenant_id: str) -> Dict[str, Any]:
    return _to_ddb({"pk": tenant_id, "sk": SORT_KEY})


def _is_condition_failure(error: ClientError) -> bool:
    return aws_error_code(error) == "ConditionalCheckFailedException"


class TenantRepository:
    """Reads and writes tenant records in one table.

    Takes the low-level DynamoDB client: the resource layer costs a cold
    start more imports and model loading for no benefit here.
    """

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table_name = table_name

    def get(self, tenant_id: str) -> Optional[Dict[str, Any]]:
        with aws_call("DynamoDB"):
            response = self._ddb.get_item(
                TableName=self._table_name, Key=_key(tenant_id), ConsistentRead=True
            )
        item = response.get("Item")
        return _from_ddb(item) if item else None

    def require(self, tenant_id: str) -> Dict[str, Any]:
        item = self.get(tenant_id)
        if item is None:
            raise TenantNotFound(f"tenant {tenant_id} has no record")
        return item

    def create(self, tenant: NewTenant, now: str) -> Dict[str, Any]:
        """Create the record in status ``onboarding``; a retry returns it unchanged."""
        item = {
            "pk": tenant.tenant_id,
            "sk": SORT_KEY,
            "status": ONBOARDING,
            "email": tenant.email,
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

    def set_contact_list(
        self, tenant_id: str, list_name: str, now: str, topic: Optional[str] = None
    ) -> None:
        values = {"list": list_name, **({"topic": topic} if topic else {})}
        self._set_once(tenant_id, values, now)

    def _set_once(self, tenant_id: str, values: Dict[str, str], now: str) -> None:
        """Set attributes that, once set, must never change to other values."""
        names, placeholders, sets, conditions = {}, {":now": now}, [], []
        for index, (attribute, value) in enumerate(values.items()):
            names[f"#a{index}"] = attribute
            placeholders[f":v{index}"] = value
            sets.append(f"#a{index} = :v{index}")
            conditions.append(f"(attribute_not_exists(#a{index}) OR #a{index} = :v{index})")
        try:
            with aws_call("DynamoDB"):
                self._ddb.update_item(
                    TableName=self._table_name,
                    Key=_key(tenant_id),
                    UpdateExpression="SET " + ", ".join(sets) + ", updatedAt = :now",
                    ConditionExpression=" AND ".join(["attribute_exists(pk)"] + conditions),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_to_ddb(placeholders),
                )
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
            record = self.require(tenant_id)
            current = {attribute: record.get(attribute) for attribute in values}
            raise TenantConflict(
                f"tenant {tenant_id} already has {current}, refusing to replace it "
                f"with {values}"
            ) from None

    def finish(
        self,
        tenant_id: str,
        status: str,
        now: str,
        extra: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Move the tenant from ``onboarding`` to a final status; idempotent.

        Repeating the same transition succeeds (and returns the record as it
        is); any other transition out of a final status raises
        ``TenantAlreadyFinal``.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final status: {status}")
        names = {"#s": "status"}
        values: Dict[str, Any] = {":s": status, ":now": now, ":onboarding": ONBOARDING}
        assignments = ["#s = :s", "updatedAt = :now"]
        for index, (attribute, value) in enumerate(sorted((extra or {}).items())):
            names[f"#x{index}"] = attribute
            values[f":x{index}"] = value
            assignments.append(f"#x{index} = :x{index}")
        try:
            with aws_call("DynamoDB"):
                response = self._ddb.update_item(
                    TableName=self._table_name,
                    Key=_key(tenant_id),
                    UpdateExpression="SET " + ", ".join(assignments),
                    ConditionExpression="attribute_exists(pk) AND #s = :onboarding",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_to_ddb(values),
                    ReturnValues="ALL_NEW",
                )
            return _from_ddb(response["Attributes"])
        except ClientError as error:
            if not _is_condition_failure(error):
                raise
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
                UpdateExpression="SET outcomeNotifiedAt = :now, outcomeEvent = :d",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_to_ddb({":now": now, ":d": detail_type}),
            )

