"""The local stack's SES tenants (scripts/local/ses.py) as a boto3 ``sesv2`` client
sees them at the local endpoint: SES's own errors, over HTTP, from moto's server
behind the stack's extensions (scripts/local/aws.py), as ``make run`` serves it.

SES's tenant quota (10,000 an account and Region) is made small here by
patching the emulator's constant for the test, so the quota is reached in a
few calls; nothing the stack reads can change it.
"""
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from scripts.local import ses
from scripts.local.aws import AwsExtensions, LocalAwsServer, behave_like_aws
from scripts.shared import LOCAL_REGION

QUOTA = 3


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The local AWS endpoint, on a free port, for this module."""
    behave_like_aws(enforce_ses_quotas=False)
    server = LocalAwsServer(0, AwsExtensions).start()
    yield server.endpoint
    server.stop()


@pytest.fixture
def sesv2(endpoint: str) -> Iterator[Any]:
    """A boto3 sesv2 client at the endpoint, on an account with no tenants yet."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    yield boto3.session.Session(region_name=LOCAL_REGION).client("sesv2", endpoint_url=endpoint)
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


@pytest.fixture
def small_quota(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """LOCAL_ENFORCE_SES_QUOTAS=1, with a tenant quota of QUOTA."""
    monkeypatch.setattr(ses, "MAX_TENANTS", QUOTA)
    ses.reproduce_ses_contact_lists(enforce_quotas=True)
    yield
    ses.reproduce_ses_contact_lists(enforce_quotas=False)


def error_code(refused: pytest.ExceptionInfo[Any]) -> str:
    return str(refused.value.response["Error"]["Code"])


def test_given_the_tenant_quota_reached_when_one_more_is_created_then_limit_exceeded(
        sesv2, small_quota):
    for n in range(QUOTA):
        sesv2.create_tenant(TenantName=f"tenant-{n}")

    with pytest.raises(sesv2.exceptions.LimitExceededException) as refused:
        sesv2.create_tenant(TenantName="tenant-over")

    assert error_code(refused) == "LimitExceededException"
    assert str(QUOTA) in refused.value.response["Error"]["Message"]
    assert len(sesv2.list_tenants()["Tenants"]) == QUOTA


def test_given_the_tenant_quota_reached_when_one_is_deleted_then_another_fits(sesv2, small_quota):
    for n in range(QUOTA):
        sesv2.create_tenant(TenantName=f"tenant-{n}")

    sesv2.delete_tenant(TenantName="tenant-0")

    assert sesv2.create_tenant(TenantName="tenant-again")["TenantName"] == "tenant-again"


def test_given_quotas_not_enforced_when_past_the_quota_then_created(sesv2, monkeypatch):
    monkeypatch.setattr(ses, "MAX_TENANTS", QUOTA)
    for n in range(QUOTA + 1):
        sesv2.create_tenant(TenantName=f"tenant-{n}")

    assert len(sesv2.list_tenants()["Tenants"]) == QUOTA + 1


def test_given_a_tenant_when_created_again_then_already_exists(sesv2, small_quota):
    sesv2.create_tenant(TenantName="tenant-ada")

    with pytest.raises(sesv2.exceptions.AlreadyExistsException) as refused:
        sesv2.create_tenant(TenantName="tenant-ada")

    assert error_code(refused) == "AlreadyExistsException"
    assert [t["TenantName"] for t in sesv2.list_tenants()["Tenants"]] == ["tenant-ada"]


@pytest.mark.parametrize("operation", ["get_tenant", "delete_tenant"])
def test_given_no_such_tenant_when_read_or_deleted_then_not_found(sesv2, small_quota, operation):
    sesv2.create_tenant(TenantName="tenant-ada")

    with pytest.raises(sesv2.exceptions.NotFoundException) as refused:
        getattr(sesv2, operation)(TenantName="tenant-nobody")

    assert error_code(refused) == "NotFoundException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_given_a_deleted_tenant_when_read_then_not_found(sesv2, small_quota):
    sesv2.create_tenant(TenantName="tenant-ada")
    sesv2.delete_tenant(TenantName="tenant-ada")

    with pytest.raises(sesv2.exceptions.NotFoundException):
        sesv2.get_tenant(TenantName="tenant-ada")
    assert sesv2.list_tenants()["Tenants"] == []
