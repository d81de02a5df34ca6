import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import steps
from chalicelib.clock import format_instant, utc_now
from chalicelib.contact_lists import ContactListPlace
from chalicelib.errors import (
    EventPublishFailed,
    InvalidTaskInput,
    TenantAlreadyFinal,
    TenantNotFound,
)
from chalicelib.outcomes import Outcomes
from chalicelib.settings import Settings
from chalicelib.tenants import MAX_REASON_LENGTH
from tests.support import load_event
from tests.unit.conftest import TENANT_ID, raw_item

T0 = "2026-11-26T13:51:53.123Z"
DECIDED_AT = "2026-11-26T14:00:00.000Z"
ADMIN = "arn:aws:iam::123456789012:user/admin"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token-" + "y" * 100 + "end999"


@pytest.fixture
def task_input():
    return load_event("task_tenant.json")


@pytest.fixture
def onboarding(tenants, new_tenant):
    """A tenant record in status onboarding."""
    tenants.create(new_tenant, T0)
    return tenants


def outcome(task_input, status, **fields):
    return {**task_input, "outcome": {"status": status, **fields}}


def approval(task_input):
    return outcome(
        task_input,
        "active",
        decision={"status": "approved", "reason": None, "decidedAt": DECIDED_AT, "decidedBy": ADMIN},
    )


def lambda_error(error_type, message):
    """A Catch's error object for a Lambda that raised (Cause is a JSON string)."""
    cause = {"errorMessage": message, "errorType": error_type, "stackTrace": ["  File ..."]}
    return {"Error": error_type, "Cause": json.dumps(cause)}


# --- utc_now ------------------------------------------------------------------
def test_given_now_when_formatted_then_iso_8601_utc_with_millis_ending_in_z():
    value = utc_now()

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - parsed) < timedelta(seconds=5)


# --- tenant_from_input --------------------------------------------------------
@pytest.mark.parametrize(
    "event",
    [None, {}, {"tenant": "t"}, {"tenant": {"tenantId": "t", "email": "e@example.com"}}],
    ids=["none", "no-tenant", "tenant-not-object", "tenant-without-name"],
)
def test_given_unusable_task_input_when_read_then_invalid_task_input(event):
    with pytest.raises(InvalidTaskInput):
        steps.tenant_from_input(event)


# --- create_tenant_record -----------------------------------------------------
def test_given_a_new_tenant_when_its_record_is_created_then_status_onboarding_and_flag_returned(
    tenants, task_input
):
    settings = Settings("tenants", "bus", "arn:x:stateMachine:m", stripe_secret_id="s")

    result = steps.create_tenant_record(task_input, tenants, settings)

    assert result == {"createdAt": tenants.get(TENANT_ID)["createdAt"], "stripeConfigured": True}
    assert tenants.get(TENANT_ID)["status"] == "onboarding"


# --- create_stripe_customer ---------------------------------------------------
class BillingThatMustNotBeCalled:
    def create_customer(self, tenant, attempt=1):
        raise AssertionError("billing was called although the tenant has a customer")


class RecordingBilling:
    def __init__(self):
        self.tenants = []

    def create_customer(self, tenant, attempt=1):
        self.tenants.append(tenant)
        return "cus_new"


def test_given_a_tenant_with_a_stripe_customer_when_step_runs_then_existing_id_without_billing(
    onboarding, task_input
):
    onboarding.set_stripe_customer(TENANT_ID, "cus_existing", T0)

    result = steps.create_stripe_customer(task_input, onboarding, BillingThatMustNotBeCalled())

    assert result == {"customerId": "cus_existing"}


def test_given_a_tenant_without_a_stripe_customer_when_step_runs_then_billing_creates_one(
    onboarding, task_input, new_tenant
):
    billing = RecordingBilling()

    result = steps.create_stripe_customer(task_input, onboarding, billing)

    assert result == {"customerId": "cus_new"}
    assert billing.tenants == [new_tenant]


def test_given_no_record_when_stripe_step_runs_then_tenant_not_found(tenants, task_input):
    with pytest.raises(TenantNotFound):
        steps.create_stripe_customer(task_input, tenants, BillingThatMustNotBeCalled())


# --- update_tenant_with_stripe_id ---------------------------------------------
def test_given_a_customer_id_when_stored_then_the_record_holds_it(onboarding):
    event = {"tenantId": TENANT_ID, "stripeCustomerId": "cus_1"}

    assert steps.update_tenant_with_stripe_id(event, onboarding) == {"stripeCustomerId": "cus_1"}
    assert onboarding.get(TENANT_ID)["stripeCustomerId"] == "cus_1"


def test_given_no_customer_id_when_stored_then_invalid_task_input(onboarding):
    with pytest.raises(InvalidTaskInput):
        steps.update_tenant_with_stripe_id({"tenantId": TENANT_ID}, onboarding)


# --- create_contact_list ------------------------------------------------------
class RecordingContactLists:
    def __init__(self, place):
        self.place = place
        self.calls = []

    def ensure_for_tenant(self, tenant_id, tenant_name):
        self.calls.append((tenant_id, tenant_name))
        return self.place


def test_given_list_per_tenant_when_contact_list_step_runs_then_list_is_stored_and_returned(
    onboarding, task_input
):
    lists = RecordingContactLists(ContactListPlace(list=f"tenant-{TENANT_ID}"))

    result = steps.create_contact_list(task_input, onboarding, lists)

    assert result == {"list": f"tenant-{TENANT_ID}", "listMode": "list-per-tenant"}
    assert lists.calls == [(TENANT_ID, "Ada Ltd")]
    assert onboarding.get(TENANT_ID)["list"] == f"tenant-{TENANT_ID}"


def test_given_topic_per_tenant_when_contact_list_step_runs_then_list_and_topic_are_stored(
    onboarding, task_input
):
    lists = RecordingContactLists(ContactListPlace(list="shared", topic=f"tenant-{TENANT_ID}",
                                                   mode="topic-per-tenant"))

    result = steps.create_contact_list(task_input, onboarding, lists)

    assert result == {"list": "shared", "topic": f"tenant-{TENANT_ID}",
                      "listMode": "topic-per-tenant"}
    record = onboarding.get(TENANT_ID)
    assert (record["list"], record["topic"]) == ("shared", f"tenant-{TENANT_ID}")


# --- await_decision -----------------------------------------------------------
def waiting(task_input, token=TOKEN):
    return {
        **task_input,
        "taskToken": token,
        "waitStartedAt": "2026-11-26T10:00:00Z",
        "approvalWindowSeconds": 3600,
    }


@pytest.fixture
def clock(monkeypatch):
    """steps.utc_now, moved by hand."""
    now = {"value": datetime(2026, 11, 26, 10, 0, 5, tzinfo=UTC)}
    monkeypatch.setattr(steps, "utc_now", lambda: format_instant(now["value"]))

    def advance(seconds):
        now["value"] += timedelta(seconds=seconds)

    return advance


def test_given_a_task_token_when_awaiting_then_it_is_never_logged_or_published(
    onboarding, publisher, task_input, caplog, clock
):
    caplog.set_level(logging.DEBUG, logger="chalicelib")

    result = steps.await_decision(waiting(task_input), onboarding, publisher)

    # the deadline is this attempt's: Step Functions times it from the task's start
    assert result == {"awaitingDecision": True, "decideBy": "2026-11-26T11:00:05.000Z"}
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in repr(record.__dict__)
    [(detail_type, detail)] = publisher.events
    assert detail_type == "Tenant Onboarding Approval Requested"
    assert TOKEN not in repr(detail)
    assert onboarding.get(TENANT_ID)["pendingDecision"]["taskToken"] == TOKEN


def test_given_the_same_token_when_awaiting_again_then_approval_is_requested_once(
    onboarding, publisher, task_input
):
    steps.await_decision(waiting(task_input), onboarding, publisher)
    steps.await_decision(waiting(task_input), onboarding, publisher)

    assert len(publisher.events) == 1


def test_given_a_new_token_after_a_retry_when_awaiting_then_it_replaces_the_old_one(
    onboarding, publisher, task_input
):
    steps.await_decision(waiting(task_input, "old-token-123456789"), onboarding, publisher)
    steps.await_decision(waiting(task_input, "new-token-987654321"), onboarding, publisher)

    assert onboarding.get(TENANT_ID)["pendingDecision"]["taskToken"] == "new-token-987654321"


def test_given_the_wait_task_repeated_with_new_tokens_then_approval_is_requested_once(
    onboarding, publisher, task_input
):
    # the hole: each repeat replaced pendingDecision and dropped requestNotifiedAt,
    # so four calls with alternating tokens published 1, 1, 2, 2 events
    for token in ("token-a-123456789", "token-b-123456789") * 2:
        steps.await_decision(waiting(task_input, token), onboarding, publisher)

    assert [t for t, _ in publisher.events] == ["Tenant Onboarding Approval Requested"]
    assert onboarding.get(TENANT_ID)["pendingDecision"]["taskToken"] == "token-b-123456789"


def test_given_a_retried_wait_task_then_the_record_holds_its_own_later_deadline(
    onboarding, publisher, task_input, clock
):
    steps.await_decision(waiting(task_input, "first-attempt-123456"), onboarding, publisher)
    clock(240)  # the retry starts four minutes later, with the whole window again

    result = steps.await_decision(waiting(task_input, "second-attempt-12345"), onboarding, publisher)

    assert result["decideBy"] == "2026-11-26T11:04:05.000Z"
    record = onboarding.get(TENANT_ID)
    assert record["decideBy"] == record["pendingDecision"]["decideBy"] == result["decideBy"]
    assert len(publisher.events) == 1


def test_given_a_retry_that_failed_before_asking_then_it_asks_with_its_own_deadline(
    onboarding, publisher, task_input, clock
):
    publisher.fail_next = True  # the first attempt's PutEvents fails
    with pytest.raises(EventPublishFailed):
        steps.await_decision(waiting(task_input, "first-attempt-123456"), onboarding, publisher)
    clock(240)

    steps.await_decision(waiting(task_input, "second-attempt-12345"), onboarding, publisher)

    [(_, detail)] = publisher.events
    assert detail["decideBy"] == "2026-11-26T11:04:05.000Z"  # not the first attempt's 11:00:05


def test_given_a_new_wait_when_awaiting_then_approval_is_requested_again(
    onboarding, publisher, task_input
):
    steps.await_decision(waiting(task_input, "first-wait-1234567"), onboarding, publisher)

    later_wait = {**waiting(task_input, "second-wait-123456"), "waitStartedAt": "2026-11-27T09:00:00Z"}
    steps.await_decision(later_wait, onboarding, publisher)

    assert len(publisher.events) == 2


def test_given_a_final_tenant_when_awaiting_then_tenant_already_final(
    onboarding, publisher, task_input
):
    steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    with pytest.raises(TenantAlreadyFinal):
        steps.await_decision(waiting(task_input), onboarding, publisher)


def test_given_a_decision_when_final_then_the_token_is_not_kept(onboarding, publisher, task_input):
    steps.await_decision(waiting(task_input), onboarding, publisher)

    steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    assert "pendingDecision" not in onboarding.get(TENANT_ID)


def test_given_no_task_token_when_awaiting_then_invalid_task_input(onboarding, publisher, task_input):
    with pytest.raises(InvalidTaskInput):
        steps.await_decision(task_input, onboarding, publisher)


def test_given_no_approval_window_when_awaiting_then_invalid_task_input(
    onboarding, publisher, task_input
):
    with pytest.raises(InvalidTaskInput):
        steps.await_decision({**task_input, "taskToken": TOKEN}, onboarding, publisher)


# --- update_status_and_notify -------------------------------------------------
def test_given_onboarding_when_approved_then_one_complete_event_with_tenant_and_status(
    onboarding, publisher, task_input
):
    result = steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    assert result == {"status": "active", "published": True}
    [(detail_type, detail)] = publisher.events
    assert detail_type == "Tenant Onboarding Complete"
    assert detail["tenantId"] == TENANT_ID
    assert detail["email"] == "ada@example.com"
    assert detail["name"] == "Ada Ltd"
    assert detail["status"] == "active"


def test_given_onboarding_when_approved_then_record_is_active_and_marked_notified(
    onboarding, publisher, task_input
):
    steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    record = onboarding.get(TENANT_ID)
    assert record["status"] == "active"
    assert record["outcomeEvent"] == "Tenant Onboarding Complete"
    assert record["outcomeNotifiedAt"]


def test_given_an_approval_already_published_when_step_runs_again_then_nothing_more_published(
    onboarding, publisher, task_input
):
    steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    result = steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    assert result == {"status": "active", "published": False}
    assert len(publisher.events) == 1


def test_given_active_but_publish_failed_when_step_runs_again_then_the_event_goes_out(
    onboarding, publisher, task_input
):
    class RefusingPublisher:
        def publish(self, detail_type, detail):
            raise EventPublishFailed("EventBridge did not accept it")

    with pytest.raises(EventPublishFailed):
        steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, RefusingPublisher()))

    result = steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))

    assert result["published"] is True
    assert [t for t, _ in publisher.events] == ["Tenant Onboarding Complete"]


def test_given_a_rejection_when_step_runs_then_the_event_carries_the_reason(
    onboarding, publisher, task_input
):
    event = outcome(
        task_input,
        "rejected",
        decision={"status": "rejected", "reason": "incomplete", "decidedAt": DECIDED_AT, "decidedBy": ADMIN},
    )

    steps.update_status_and_notify(event, Outcomes(onboarding, publisher))

    [(detail_type, detail)] = publisher.events
    assert detail_type == "Tenant Onboarding Rejected"
    assert detail["status"] == "rejected"
    assert detail["reason"] == "incomplete"
    assert detail["decidedAt"] == DECIDED_AT
    assert detail["decidedBy"] == ADMIN


def test_given_a_rejection_when_step_runs_then_the_decision_is_stored_on_the_record(
    onboarding, publisher, task_input
):
    event = outcome(
        task_input,
        "rejected",
        decision={"status": "rejected", "reason": "incomplete", "decidedAt": DECIDED_AT, "decidedBy": None},
    )

    steps.update_status_and_notify(event, Outcomes(onboarding, publisher))

    record = onboarding.get(TENANT_ID)
    assert record["status"] == "rejected"
    assert record["decision"] == {
        "status": "rejected",
        "reason": "incomplete",
        "decidedAt": DECIDED_AT,
    }


def test_given_a_lambda_failure_when_step_runs_then_failure_reason_uses_the_error_message(
    onboarding, publisher, task_input
):
    event = outcome(task_input, "failed", error=lambda_error("StripeAuthenticationFailed", "bad key"))

    steps.update_status_and_notify(event, Outcomes(onboarding, publisher))

    record = onboarding.get(TENANT_ID)
    assert record["status"] == "failed"
    assert record["failureReason"] == "StripeAuthenticationFailed: bad key"
    [(detail_type, detail)] = publisher.events
    assert (detail_type, detail["reason"]) == ("Tenant Onboarding Failed", record["failureReason"])


def test_given_a_plain_string_cause_when_step_runs_then_failure_reason_uses_it(
    onboarding, publisher, task_input
):
    error = {"Error": "InvalidDecision", "Cause": "the callback did not carry status approved or rejected"}

    steps.update_status_and_notify(outcome(task_input, "failed", error=error),
                                   Outcomes(onboarding, publisher))

    assert onboarding.get(TENANT_ID)["failureReason"] == (
        "InvalidDecision: the callback did not carry status approved or rejected"
    )


def test_given_no_record_when_failed_then_failed_event_still_published(
    tenants, dynamodb, publisher, task_input
):
    event = outcome(task_input, "failed", error=lambda_error("AwsServiceUnavailable", "throttled"))

    result = steps.update_status_and_notify(event, Outcomes(tenants, publisher))

    assert result == {"status": "failed", "published": True}
    [(detail_type, detail)] = publisher.events
    assert detail_type == "Tenant Onboarding Failed"
    assert detail["tenantId"] == TENANT_ID
    assert raw_item(dynamodb) == {}


def test_given_no_record_when_approved_then_tenant_not_found_and_nothing_published(
    tenants, publisher, task_input
):
    with pytest.raises(TenantNotFound):
        steps.update_status_and_notify(approval(task_input), Outcomes(tenants, publisher))
    assert publisher.events == []


def test_given_active_and_notified_when_failed_outcome_arrives_then_nothing_changes(
    onboarding, publisher, task_input
):
    steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))
    event = outcome(task_input, "failed", error=lambda_error("X", "late"))

    result = steps.update_status_and_notify(event, Outcomes(onboarding, publisher))

    assert result == {"status": "active", "published": False}
    assert onboarding.get(TENANT_ID)["status"] == "active"
    assert len(publisher.events) == 1


def test_given_active_but_unpublished_when_failure_path_runs_then_complete_goes_out(
    onboarding, publisher, task_input
):
    # Update Status & Notify set active, then EventBridge failed past every retry
    onboarding.finish(TENANT_ID, "active", "2026-11-26T10:00:00.000Z",
                      {"decision": {"status": "approved", "decidedBy": "admin"}})
    event = outcome(task_input, "failed", error=lambda_error("EventPublishFailed", "down"))

    result = steps.update_status_and_notify(event, Outcomes(onboarding, publisher))

    assert result == {"status": "active", "published": True}
    [(detail_type, detail)] = publisher.events
    assert detail_type == "Tenant Onboarding Complete"
    assert detail["decidedBy"] == "admin"
    assert onboarding.get(TENANT_ID)["status"] == "active"
    assert onboarding.get(TENANT_ID)["outcomeNotifiedAt"]


def test_given_rejected_when_a_late_approval_arrives_then_already_final(
    onboarding, publisher, task_input
):
    steps.update_status_and_notify(outcome(task_input, "timeout"), Outcomes(onboarding, publisher))

    with pytest.raises(TenantAlreadyFinal):
        steps.update_status_and_notify(approval(task_input), Outcomes(onboarding, publisher))


def test_given_a_timeout_when_step_runs_then_timeout_event_carries_the_timeout_reason(
    onboarding, publisher, task_input
):
    steps.update_status_and_notify(outcome(task_input, "timeout"), Outcomes(onboarding, publisher))

    [(detail_type, detail)] = publisher.events
    assert detail_type == "Tenant Onboarding Timeout"
    assert detail["reason"] == steps.TIMEOUT_REASON
    assert onboarding.get(TENANT_ID)["status"] == "timeout"


@pytest.mark.parametrize("status", [None, "approved", "onboarding"])
def test_given_an_unknown_outcome_status_when_step_runs_then_invalid_task_input(
    onboarding, publisher, task_input, status
):
    with pytest.raises(InvalidTaskInput):
        steps.update_status_and_notify(outcome(task_input, status), Outcomes(onboarding, publisher))
    assert publisher.events == []


# --- failure_reason -----------------------------------------------------------
def test_given_a_json_cause_with_error_message_when_described_then_name_and_message():
    assert steps.failure_reason(lambda_error("TenantConflict", "other email")) == (
        "TenantConflict: other email"
    )


def test_given_a_plain_string_cause_when_described_then_name_and_cause():
    assert steps.failure_reason({"Error": "States.Timeout", "Cause": "took too long"}) == (
        "States.Timeout: took too long"
    )


def test_given_no_cause_when_described_then_only_the_error_name():
    assert steps.failure_reason({"Error": "States.TaskFailed"}) == "States.TaskFailed"


def test_given_no_error_object_when_described_then_an_unknown_reason():
    assert steps.failure_reason(None) == "onboarding failed for an unknown reason"


def test_given_a_huge_cause_when_described_then_it_is_capped_at_1000_chars():
    assert len(steps.failure_reason({"Error": "E", "Cause": "c" * 5000})) == MAX_REASON_LENGTH
