"""Faults, each injected into a real execution of statemachine.json: every
onboarding must end in exactly one correct state with one of everything."""
import json

import boto3
import pytest
from chalice.test import Client

from chalicelib import dependencies as deps
from chalicelib.events import APPROVAL_REQUESTED as APPROVAL
from tests.support import localstripe_customers
from tests.support.faults import FlakyProxy, aws_error, fail_first
from tests.support.stage import REGION, STAGE, Stage, finalize_body, tenant


def app_session():
    """The boto3 session the app's clients come from, ready for fault hooks."""
    session = boto3.session.Session(region_name=REGION)
    deps.override("session", session)
    return session


def approve(stage, execution):
    token = stage.wait_for_token(execution, seconds=30)
    with Client(stage.app, stage_name=STAGE) as client:
        response = client.http.post(
            "/tenant/finalize",
            headers={"Content-Type": "application/json"},
            body=finalize_body(token, "approved"),
        )
    assert response.status_code == 200, response.body
    return token




def outcome_events(stage):
    return [e["detail-type"] for e in stage.events()]


def customers_of(base, tenant_id):
    return [c for c in localstripe_customers(base) if c["metadata"].get("tenantId") == tenant_id]


@pytest.mark.parametrize("faults", [[429] * 4, [500] * 4, ["drop"] * 4], ids=["429", "5xx", "connection"])
def test_stripe_outage_then_success_is_retried_to_one_customer(monkeypatch, localstripe, faults):
    with FlakyProxy(localstripe, faults) as proxy:
        with Stage(monkeypatch, stripe_api_base=proxy.url) as stage:
            t = tenant(10)
            execution = stage.start(t)
            approve(stage, execution)

            assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
            record = stage.record(t["tenantId"])
            assert record["status"] == "active"
            assert [c["id"] for c in customers_of(localstripe, t["tenantId"])] == [
                record["stripeCustomerId"]
            ]
            # more faults than stripe-python's own retries: the state machine retried
            assert stage.lambdas.invocations["tenant-onboarding-local-create_stripe_customer"] >= 2
            assert proxy.requests_seen > len(faults)
            assert outcome_events(stage) == [APPROVAL, "Tenant Onboarding Complete"]


def test_stripe_authentication_error_fails_at_once_without_leaking_the_key(
    monkeypatch, localstripe
):
    with Stage(monkeypatch, stripe_api_base=localstripe, stripe_api_key="rk_wrong_1234") as stage:
        t = tenant(11)
        execution = stage.start(t)

        assert stage.wait_for_end(execution)["status"] == "FAILED"
        record = stage.record(t["tenantId"])
        assert record["status"] == "failed"
        assert "Stripe rejected the API key" in record["failureReason"]
        assert stage.lambdas.invocations["tenant-onboarding-local-create_stripe_customer"] == 1
        events = stage.events()
        assert [e["detail-type"] for e in events] == ["Tenant Onboarding Failed"]
        assert "rk_wrong_1234" not in json.dumps(events) + record["failureReason"]


def test_dynamodb_throttling_on_a_task_is_retried_and_ends_correctly(monkeypatch):
    with Stage(monkeypatch) as stage:
        throttle = fail_first(
            app_session(), "before-call.dynamodb.PutItem", 2,
            aws_error("ProvisionedThroughputExceededException", status=400),
        )
        t = tenant(12)
        execution = stage.start(t)
        approve(stage, execution)

        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
        assert stage.record(t["tenantId"])["status"] == "active"
        assert throttle.calls == 3
        assert stage.lambdas.invocations["tenant-onboarding-local-create_tenant_record"] == 3
        assert outcome_events(stage) == [APPROVAL, "Tenant Onboarding Complete"]


def test_an_existing_contact_list_of_this_tenant_counts_as_created(monkeypatch):
    with Stage(monkeypatch, contact_list_mode="list-per-tenant") as stage:
        t = tenant(13)
        stage.sesv2.create_contact_list(ContactListName=f"tenant-{t['tenantId']}")
        execution = stage.start(t)
        approve(stage, execution)

        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
        record = stage.record(t["tenantId"])
        assert (record["status"], record["list"]) == ("active", f"tenant-{t['tenantId']}")


def test_an_existing_ses_tenant_of_this_tenant_counts_as_created(monkeypatch):
    with Stage(monkeypatch) as stage:
        t = tenant(15)
        stage.sesv2.create_tenant(TenantName=f"tenant-{t['tenantId']}", Tags=[
            {"Key": "tenant-onboarding:stage", "Value": "local"},
            {"Key": "tenant-onboarding:tenantId", "Value": t["tenantId"]}])
        execution = stage.start(t)
        approve(stage, execution)

        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
        record = stage.record(t["tenantId"])
        assert (record["status"], record["sesTenant"]) == ("active", f"tenant-{t['tenantId']}")


def test_an_ses_tenant_of_the_same_name_from_another_stage_fails_onboarding(monkeypatch):
    with Stage(monkeypatch) as stage:
        t = tenant(16)
        stage.sesv2.create_tenant(TenantName=f"tenant-{t['tenantId']}", Tags=[
            {"Key": "tenant-onboarding:stage", "Value": "prod"}])

        assert stage.wait_for_end(stage.start(t))["status"] == "FAILED"
        reason = stage.record(t["tenantId"])["failureReason"]
        assert reason.startswith("TenantConflict:") and "stage 'prod'" in reason


def test_the_ses_tenant_quota_fails_onboarding_with_a_clear_reason(monkeypatch):
    with Stage(monkeypatch) as stage:
        fail_first(app_session(), "before-call.sesv2.CreateTenant", 1,
                   aws_error("LimitExceededException", "Maximum number of tenants reached", 400))
        t = tenant(17)

        assert stage.wait_for_end(stage.start(t))["status"] == "FAILED"
        record = stage.record(t["tenantId"])
        assert "SES tenant quota" in record["failureReason"]
        assert stage.lambdas.invocations["tenant-onboarding-local-create_contact_list"] == 1


def test_ses_contact_list_quota_fails_onboarding_with_a_clear_reason(monkeypatch):
    with Stage(monkeypatch, enforce_ses_quotas=True, contact_list_mode="list-per-tenant") as stage:
        stage.sesv2.create_contact_list(ContactListName="someone-elses-list")
        t = tenant(14)
        execution = stage.start(t)

        assert stage.wait_for_end(execution)["status"] == "FAILED"
        record = stage.record(t["tenantId"])
        assert record["status"] == "failed"
        assert "SES contact-list quota is reached" in record["failureReason"]
        assert stage.lambdas.invocations["tenant-onboarding-local-create_contact_list"] == 1
        assert outcome_events(stage) == ["Tenant Onboarding Failed"]


def test_eventbridge_entry_failure_then_success_publishes_exactly_once(monkeypatch):
    with Stage(monkeypatch) as stage:
        # the first PutEvents (Approval Requested) passes; the outcome's first fails
        refused = fail_first(
            app_session(), "before-call.events.PutEvents", 1, skip=1,
            answer={"status": 200, "parsed": {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}],
            }},
        )
        t = tenant(15)
        execution = stage.start(t)
        approve(stage, execution)

        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
        assert stage.record(t["tenantId"])["status"] == "active"
        assert refused.calls == 3
        assert outcome_events(stage) == [APPROVAL, "Tenant Onboarding Complete"]


class CrashingContactLists:
    def ensure_for_tenant(self, tenant_id, tenant_name):
        raise RuntimeError("boom: a bug in the contact-list task")


def test_a_crashing_task_is_retried_per_policy_then_fails(monkeypatch):
    with Stage(monkeypatch) as stage:
        deps.override("contact_lists", CrashingContactLists())
        t = tenant(16)
        execution = stage.start(t)

        assert stage.wait_for_end(execution, seconds=60)["status"] == "FAILED"
        record = stage.record(t["tenantId"])
        assert record["status"] == "failed"
        assert record["failureReason"] == "RuntimeError: boom: a bug in the contact-list task"
        # States.ALL retrier: 1 attempt + 2 retries
        assert stage.lambdas.invocations["tenant-onboarding-local-create_contact_list"] == 3
        assert outcome_events(stage) == ["Tenant Onboarding Failed"]


def test_finalizing_twice_is_a_409_and_changes_nothing(monkeypatch):
    with Stage(monkeypatch) as stage:
        t = tenant(17)
        execution = stage.start(t)
        token = approve(stage, execution)
        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        with Client(stage.app, stage_name=STAGE) as client:
            again = client.http.post(
                "/tenant/finalize",
                headers={"Content-Type": "application/json"},
                body=finalize_body(token, "rejected", "changed my mind"),
            )

        assert again.status_code == 409
        assert "already decided" in json.loads(again.body)["Message"]
        assert stage.record(t["tenantId"])["status"] == "active"
        assert outcome_events(stage) == [APPROVAL, "Tenant Onboarding Complete"]


def test_a_late_duplicate_outcome_step_cannot_move_a_final_tenant(monkeypatch):
    with Stage(monkeypatch) as stage:
        t = tenant(18)
        execution = stage.start(t)
        approve(stage, execution)
        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        with Client(stage.app, stage_name=STAGE) as client:
            late_failure = client.lambda_.invoke(
                "update_status_and_notify",
                {"tenant": t, "outcome": {"status": "failed", "error": {"Error": "X"}}},
            )
            with pytest.raises(Exception, match="already active"):
                client.lambda_.invoke(
                    "update_status_and_notify",
                    {"tenant": t, "outcome": {"status": "rejected", "decision": {"status": "rejected"}}},
                )
            repeat = client.lambda_.invoke(
                "update_status_and_notify",
                {"tenant": t, "outcome": {"status": "active", "decision": {"status": "approved"}}},
            )

        assert late_failure.payload == {"status": "active", "published": False}
        assert repeat.payload == {"status": "active", "published": False}
        assert stage.record(t["tenantId"])["status"] == "active"
        assert outcome_events(stage) == [APPROVAL, "Tenant Onboarding Complete"]
