"""Fixtures of the unit tier: moto-backed AWS resources and small fakes.

Every AWS resource lives inside one ``mock_aws`` context per test, created in
us-east-1 by the fixture that needs it, so nothing outlives its test.
"""
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.events import CATALOGUE
from chalicelib.tenants import NewTenant, TenantRepository

REGION = "us-east-1"
TABLE_NAME = "tenants"
TENANT_ID = "5f3a1c2e-8b9d-4e7f-a123-4b5c6d7e8f90"
ROLE_ARN = "arn:aws:iam::123456789012:role/x"


@pytest.fixture
def aws():
    """An in-process moto AWS for the duration of one test."""
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws):
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE_NAME,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def tenants(dynamodb):
    return TenantRepository(dynamodb, TABLE_NAME)


@pytest.fixture
def new_tenant():
    return NewTenant(tenant_id=TENANT_ID, email="ada@example.com", name="Ada Ltd")


def raw_item(dynamodb, tenant_id: str = TENANT_ID) -> dict[str, Any]:
    """The record exactly as DynamoDB stores it (typed attribute values)."""
    return dynamodb.get_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}},
        ConsistentRead=True,
    ).get("Item", {})


def client_error(code: str, operation: str = "Operation") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"fake {code}"}}, operation)


class FailingClient:
    """Any AWS client whose every call raises the given ClientError code."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls: list[str] = []

    def __getattr__(self, operation: str):
        def call(**_kwargs):
            self.calls.append(operation)
            raise client_error(self.code, operation)

        return call


class FakePublisher:
    """Records what would have gone to EventBridge."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fail_next = False  # the next publish fails as EventBridge would

    def publish(self, detail_type: str, detail: dict[str, Any]) -> str:
        """As EventPublisher: a detail the catalogue does not describe is refused."""
        CATALOGUE[detail_type].check(detail)
        if self.fail_next:
            from chalicelib.errors import EventPublishFailed

            self.fail_next = False
            raise EventPublishFailed("EventBridge did not accept it: InternalFailure")
        self.events.append((detail_type, detail))
        return f"event-{len(self.events)}"


@pytest.fixture
def publisher():
    return FakePublisher()
