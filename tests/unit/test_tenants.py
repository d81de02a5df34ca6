import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.errors import (
    AwsServiceUnavailable,
    TenantAlreadyFinal,
    TenantConflict,
    TenantNotFound,
)
from chalicelib.tenants import NewTenant, TenantRepository
from tests.unit.conftest import REGION, TABLE_NAME, TENANT_ID, raw_item

T0 = "2026-11-26T13:51:53.123Z"
T1 = "2026-11-26T13:52:00.000Z"
T2 = "2026-11-26T13:53:00.000Z"


# --- create -------------------------------------------------------------------
def test_given_no_record_when_created_then_every_specified_attribute_is_stored(
    tenants, dynamodb, new_tenant
):
    tenants.create(new_tenant, T0)

    assert raw_item(dynamodb) == {
        "pk": {"S": TENANT_ID},
        "sk": {"S": "tenant"},
        "status": {"S": "onboarding"},
        "email": {"S": "ada@example.com"},
        "emailKey": {"S": "ada@example.com"},
        "name": {"S": "Ada Ltd"},
        "createdAt": {"S": T0},
        "updatedAt": {"S": T0},
        "subscribers": {"N": "0"},
    }


def test_given_no_record_when_created_then_the_new_record_is_returned(tenants, new_tenant):
    record = tenants.create(new_tenant, T0)

    assert record["status"] == "onboarding"
    assert record["createdAt"] == T0


def test_given_a_record_when_the_same_tenant_is_created_again_then_original_created_at_is_kept(
    tenants, dynamodb, new_tenant
):
    tenants.create(new_tenant, T0)

    record = tenants.create(new_tenant, T1)

    assert record["createdAt"] == T0
    assert record["updatedAt"] == T0
    assert raw_item(dynamodb)["createdAt"] == {"S": T0}


def test_given_a_record_when_created_for_another_email_then_tenant_conflict(
    tenants, dynamodb, new_tenant
):
    tenants.create(new_tenant, T0)
    other = NewTenant(tenant_id=TENANT_ID, email="mallory@example.com", name="Ada Ltd")

    with pytest.raises(TenantConflict):
        tenants.create(other, T1)
    assert raw_item(dynamodb)["email"] == {"S": "ada@example.com"}


# --- get / require ------------------------------------------------------------
def test_given_no_record_when_get_then_none(tenants):
    assert tenants.get("nobody") is None


def test_given_no_record_when_require_then_tenant_not_found(tenants):
    with pytest.raises(TenantNotFound):
        tenants.require("nobody")


# --- set once -----------------------------------------------------------------
def test_given_no_stripe_customer_when_set_then_it_is_stored_with_updated_at(
    tenants, dynamodb, new_tenant
):
    tenants.create(new_tenant, T0)

    tenants.set_stripe_customer(TENANT_ID, "cus_A", T1)

    item = raw_item(dynamodb)
    assert item["stripeCustomerId"] == {"S": "cus_A"}
    assert item["updatedAt"] == {"S": T1}


def test_given_a_stripe_customer_when_the_same_value_is_set_again_then_no_error(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.set_stripe_customer(TENANT_ID, "cus_A", T1)

    tenants.set_stripe_customer(TENANT_ID, "cus_A", T2)

    assert tenants.get(TENANT_ID)["stripeCustomerId"] == "cus_A"


def test_given_a_stripe_customer_when_another_value_is_set_then_conflict_and_original_kept(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.set_stripe_customer(TENANT_ID, "cus_A", T1)

    with pytest.raises(TenantConflict, match="cus_A"):
        tenants.set_stripe_customer(TENANT_ID, "cus_B", T2)
    assert tenants.get(TENANT_ID)["stripeCustomerId"] == "cus_A"


def test_given_no_record_when_stripe_customer_is_set_then_tenant_not_found_and_nothing_written(
    tenants, dynamodb
):
    with pytest.raises(TenantNotFound):
        tenants.set_stripe_customer(TENANT_ID, "cus_A", T1)
    assert raw_item(dynamodb) == {}


def test_given_no_contact_list_when_set_then_it_is_stored(tenants, dynamodb, new_tenant):
    tenants.create(new_tenant, T0)

    tenants.set_contact_list(TENANT_ID, {"list": f"tenant-{TENANT_ID}"}, T1)

    assert raw_item(dynamodb)["list"] == {"S": f"tenant-{TENANT_ID}"}


def test_given_a_contact_list_when_the_same_value_is_set_again_then_no_error(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.set_contact_list(TENANT_ID, {"list": "tenant-a"}, T1)

    tenants.set_contact_list(TENANT_ID, {"list": "tenant-a"}, T2)

    assert tenants.get(TENANT_ID)["list"] == "tenant-a"


def test_given_a_contact_list_when_another_value_is_set_then_conflict_and_original_kept(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.set_contact_list(TENANT_ID, {"list": "tenant-a"}, T1)

    with pytest.raises(TenantConflict):
        tenants.set_contact_list(TENANT_ID, {"list": "tenant-b"}, T2)
    assert tenants.get(TENANT_ID)["list"] == "tenant-a"


def test_given_a_shared_list_when_list_and_topic_are_set_then_both_are_stored(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)

    tenants.set_contact_list(TENANT_ID, {"list": "shared", "topic": "tenant-a"}, T1)

    record = tenants.get(TENANT_ID)
    assert (record["list"], record["topic"]) == ("shared", "tenant-a")


def test_given_no_topic_when_the_list_is_set_then_no_topic_attribute_is_written(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)

    tenants.set_contact_list(TENANT_ID, {"list": "tenant-a"}, T1)

    assert "topic" not in tenants.get(TENANT_ID)


def test_given_a_topic_when_another_topic_is_set_then_conflict_and_original_kept(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.set_contact_list(TENANT_ID, {"list": "shared", "topic": "tenant-a"}, T1)

    with pytest.raises(TenantConflict):
        tenants.set_contact_list(TENANT_ID, {"list": "shared", "topic": "tenant-b"}, T2)
    assert tenants.get(TENANT_ID)["topic"] == "tenant-a"


# --- finish -------------------------------------------------------------------
def test_given_onboarding_when_finished_active_then_the_new_record_is_returned(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)

    record = tenants.finish(TENANT_ID, "active", T1)

    assert record["status"] == "active"
    assert record["updatedAt"] == T1
    assert record["createdAt"] == T0
    assert tenants.get(TENANT_ID)["status"] == "active"


def test_given_onboarding_when_finished_with_extra_then_extra_attributes_are_stored(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)

    tenants.finish(TENANT_ID, "failed", T1, {"failureReason": "boom", "attempt": "2"})

    record = tenants.get(TENANT_ID)
    assert (record["failureReason"], record["attempt"]) == ("boom", "2")


def test_given_active_when_finished_active_again_then_record_returned_unchanged(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.finish(TENANT_ID, "active", T1)

    record = tenants.finish(TENANT_ID, "active", T2)

    assert record["status"] == "active"
    assert record["updatedAt"] == T1


def test_given_active_when_finished_failed_then_already_final_and_status_kept(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.finish(TENANT_ID, "active", T1)

    with pytest.raises(TenantAlreadyFinal):
        tenants.finish(TENANT_ID, "failed", T2, {"failureReason": "late"})
    record = tenants.get(TENANT_ID)
    assert record["status"] == "active"
    assert "failureReason" not in record


def test_given_a_rejected_tenant_when_its_release_fails_then_the_failure_is_kept(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)
    tenants.finish(TENANT_ID, "rejected", T1)

    written = tenants.record_release_failure(TENANT_ID, {"reason": "denied", "at": T2})

    assert written is True
    assert tenants.get(TENANT_ID)["releaseFailure"] == {"reason": "denied", "at": T2}


def test_given_an_offboarded_tenant_when_a_late_retry_reports_a_release_failure_then_none_is_kept(
    tenants, new_tenant
):
    """The offboarding purged what the tenant held and cleared the report; a
    retry of the onboarding's last step running after it must not bring it back."""
    tenants.create(new_tenant, T0)
    record = tenants.finish(TENANT_ID, "rejected", T1)
    tenants.begin_offboarding(TENANT_ID, record, {"requestedBy": "ada", "requestedAt": T1,
                                                  "reason": "purge"})
    tenants.finish_offboarding(TENANT_ID, T2)

    written = tenants.record_release_failure(TENANT_ID, {"reason": "denied", "at": T2})

    assert written is False
    assert "releaseFailure" not in tenants.get(TENANT_ID)
    assert "releaseDue" not in tenants.get(TENANT_ID)


def test_given_no_record_when_finished_then_tenant_not_found(tenants, dynamodb):
    with pytest.raises(TenantNotFound):
        tenants.finish(TENANT_ID, "active", T1)
    assert raw_item(dynamodb) == {}


@pytest.mark.parametrize("status", ["onboarding", "approved", "ACTIVE", ""])
def test_given_a_non_final_status_when_finished_then_value_error(tenants, new_tenant, status):
    tenants.create(new_tenant, T0)

    with pytest.raises(ValueError):
        tenants.finish(TENANT_ID, status, T1)
    assert tenants.get(TENANT_ID)["status"] == "onboarding"


# --- mark_notified ------------------------------------------------------------
def test_given_a_record_when_marked_notified_then_time_and_event_are_stored(
    tenants, new_tenant
):
    tenants.create(new_tenant, T0)

    tenants.mark_notified(TENANT_ID, "Tenant Onboarding Complete", T1)

    record = tenants.get(TENANT_ID)
    assert record["outcomeNotifiedAt"] == T1
    assert record["outcomeEvent"] == "Tenant Onboarding Complete"


# --- AWS errors the client raises ---------------------------------------------
@pytest.fixture
def stubbed():
    """A real DynamoDB client whose responses the test queues up (no moto)."""
    client = boto3.client("dynamodb", region_name=REGION)
    with Stubber(client) as stubber:
        yield TenantRepository(client, TABLE_NAME), stubber


CALLS = {
    "get_item": lambda repo, tenant: repo.get(tenant.tenant_id),
    "put_item": lambda repo, tenant: repo.create(tenant, T0),
    "update_item": lambda repo, tenant: repo.finish(tenant.tenant_id, "active", T0),
}


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_given_dynamodb_throttles_when_called_then_aws_service_unavailable(
    stubbed, new_tenant, operation
):
    repo, stubber = stubbed
    stubber.add_client_error(
        operation, service_error_code="ProvisionedThroughputExceededException", http_status_code=400
    )

    with pytest.raises(AwsServiceUnavailable):
        CALLS[operation](repo, new_tenant)


def test_given_dynamodb_throttles_a_set_once_write_then_aws_service_unavailable(stubbed):
    repo, stubber = stubbed
    stubber.add_client_error(
        "update_item", service_error_code="ThrottlingException", http_status_code=400
    )

    with pytest.raises(AwsServiceUnavailable):
        repo.set_stripe_customer(TENANT_ID, "cus_A", T0)


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_given_a_validation_exception_when_called_then_it_stays_a_client_error(
    stubbed, new_tenant, operation
):
    repo, stubber = stubbed
    stubber.add_client_error(
        operation, service_error_code="ValidationException", http_status_code=400
    )

    with pytest.raises(ClientError) as raised:
        CALLS[operation](repo, new_tenant)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert not isinstance(raised.value, AwsServiceUnavailable)


# --- claims ------------------------------------------------------------------------
def test_given_another_admins_claim_when_releasing_ours_then_theirs_stays(tenants, dynamodb, new_tenant):
    tenants.create(new_tenant, "2026-11-26T10:00:00.000Z")
    dynamodb.update_item(
        TableName=TABLE_NAME, Key={"pk": {"S": TENANT_ID}, "sk": {"S": "tenant"}},
        UpdateExpression="SET pendingDecision = :p",
        ExpressionAttributeValues={":p": {"M": {"taskToken": {"S": "token-1234567890"}}}})
    theirs = {"status": "approved", "decidedBy": "them", "claimedAt": "2026-11-26T10:01:00.000Z",
              "claimId": "their-claim"}
    tenants.claim_decision(TENANT_ID, theirs, "2026-11-26T10:00:00.000Z")

    assert tenants.release_claim(TENANT_ID, "our-expired-claim") is False
    assert tenants.get(TENANT_ID)["decisionClaim"]["claimId"] == "their-claim"
    assert tenants.release_claim(TENANT_ID, "their-claim") is True
    assert "decisionClaim" not in tenants.get(TENANT_ID)
