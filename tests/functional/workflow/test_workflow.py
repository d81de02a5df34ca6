"""Workflow tier: statemachine.json itself, in moto's engine, against the
real handlers; one test per outcome. Each asserts the final record, the
events published and the states visited."""
import json

from chalice.test import Client

from chalicelib import dependencies as deps
from chalicelib.events import APPROVAL_REQUESTED as APPROVAL
from tests.support import localstripe_customers
from tests.support.stage import STAGE, Stage, finalize_body, tenant

HAPPY_PATH_WITHOUT_STRIPE = [
    "Create Tenant Record",
    "Stripe Configured?",
    "Create Contact List",
    "Wait For Callback",
    "Process Callback Result",
]


def post_decision(stage, token, status, reason=None):
    with Client(stage.app, stage_name=STAGE) as client:
        return client.http.post(
            "/tenant/finalize",
            headers={"Content-Type": "application/json"},
            body=finalize_body(token, status, reason),
        )


def test_approved_tenant_becomes_active_and_complete_is_published(monkeypatch):
    with Stage(monkeypatch) as stage:
        t = tenant(1)
        execution = stage.start(t)
        token = stage.wait_for_token(execution)
        # while waiting, the record is onboarding with its contact list
        waiting = stage.record(t["tenantId"])
        assert waiting["status"] == "onboarding"
        assert waiting["list"] == f"subscribers-{t['tenantId']}"
        assert waiting["sesTenant"] == f"tenant-{t['tenantId']}"

        response = post_decision(stage, token, "approved")

        assert response.status_code == 200
        assert json.loads(response.body) == {
            "message": "Tenant onboarding approved successfully",
            "status": "approved",
        }
        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
        record = stage.record(t["tenantId"])
        assert record["status"] == "active"
        assert (record["email"], record["name"], record["subscribers"]) == (
            t["email"], t["name"], 0,
        )
        assert "stripeCustomerId" not in record
        assert record["decision"]["status"] == "approved"
        events = stage.events()
        assert [e["detail-type"] for e in events] == [APPROVAL, "Tenant Onboarding Complete"]
        assert events[1]["source"] == "tenant-onboarding"
        assert {k: events[1]["detail"][k] for k in ("tenantId", "email", "name", "status")} == {
            **t, "status": "active",
        }
        assert events[1]["detail"]["decidedBy"] == "local"
        assert stage.states_visited(execution) == HAPPY_PATH_WITHOUT_STRIPE + [
            "Approved",
            "Update Status & Notify",
        ]


def test_rejected_tenant_keeps_the_reason_and_rejected_is_published(monkeypatch):
    with Stage(monkeypatch) as stage:
        t = tenant(2)
        execution = stage.start(t)
        token = stage.wait_for_token(execution)

        response = post_decision(stage, token, "rejected", "duplicate company")

        assert response.status_code == 200
        assert json.loads(response.body) == {
            "message": "Tenant onboarding rejected successfully",
            "status": "rejected",
        }
        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
        record = stage.record(t["tenantId"])
        assert record["status"] == "rejected"
        assert record["decision"]["reason"] == "duplicate company"
        events = stage.events()
        assert [e["detail-type"] for e in events] == [APPROVAL, "Tenant Onboarding Rejected"]
        assert events[1]["detail"]["reason"] == "duplicate company"
        assert events[1]["detail"]["status"] == "rejected"
        assert stage.states_visited(execution) == HAPPY_PATH_WITHOUT_STRIPE + [
            "Rejected",
            "Release Rejected Tenant",
            "Update Status & Notify",
        ]


class BrokenContactLists:
    """SES refusing for good (a permanent, named error)."""

    def ensure_for_tenant(self, tenant_id, tenant_name):
        from chalicelib.errors import TenantConflict

        raise TenantConflict("contact list belongs to another tenant")


def test_a_task_failing_for_good_ends_failed_with_its_reason(monkeypatch):
    with Stage(monkeypatch) as stage:
        deps.override("contact_lists", BrokenContactLists())
        t = tenant(3)
        execution = stage.start(t)

        assert stage.wait_for_end(execution)["status"] == "FAILED"

        record = stage.record(t["tenantId"])
        assert record["status"] == "failed"
        assert record["failureReason"] == (
            "TenantConflict: contact list belongs to another tenant"
        )
        events = stage.events()
        assert [e["detail-type"] for e in events] == ["Tenant Onboarding Failed"]
        assert events[0]["detail"]["reason"] == record["failureReason"]
        # a permanent error is not retried: one invocation of the failing task
        assert stage.lambdas.invocations["tenant-onboarding-local-create_contact_list"] == 1
        assert stage.states_visited(execution) == [
            "Create Tenant Record",
            "Stripe Configured?",
            "Create Contact List",
            "Mark Failed & Notify",
            "Onboarding Failed",
        ]


def test_no_decision_within_the_window_ends_in_timeout(monkeypatch):
    with Stage(monkeypatch, approval_timeout_seconds=1) as stage:
        t = tenant(4)
        execution = stage.start(t)
        token = stage.wait_for_token(execution)

        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        assert stage.record(t["tenantId"])["status"] == "timeout"
        events = stage.events()
        assert [e["detail-type"] for e in events] == [APPROVAL, "Tenant Onboarding Timeout"]
        assert events[1]["detail"]["status"] == "timeout"
        assert stage.states_visited(execution) == HAPPY_PATH_WITHOUT_STRIPE[:-1] + [
            "Approval Timed Out",
            "Release Timed-Out Tenant",
            "Update Status & Notify",
        ]
        # a decision after the window is a clear conflict, not a 500
        late = post_decision(stage, token, "approved")
        assert late.status_code == 409
        assert "no longer waiting" in json.loads(late.body)["Message"]


def test_with_stripe_configured_the_customer_is_created_and_stored(monkeypatch, localstripe):
    with Stage(monkeypatch, stripe_api_base=localstripe) as stage:
        t = tenant(5)
        execution = stage.start(t)
        token = stage.wait_for_token(execution)
        assert post_decision(stage, token, "approved").status_code == 200
        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        record = stage.record(t["tenantId"])
        assert record["status"] == "active"
        assert record["stripeCustomerId"].startswith("cus_")
        customers = [
            c for c in localstripe_customers(localstripe)
            if c["metadata"].get("tenantId") == t["tenantId"]
        ]
        assert [c["id"] for c in customers] == [record["stripeCustomerId"]]
        assert customers[0]["email"] == t["email"]
        assert stage.states_visited(execution) == [
            "Create Tenant Record",
            "Stripe Configured?",
            "Create Stripe Customer",
            "Update Tenant With Stripe ID",
            "Create Contact List",
            "Wait For Callback",
            "Process Callback Result",
            "Approved",
            "Update Status & Notify",
        ]
        assert [e["detail-type"] for e in stage.events()] == [APPROVAL, "Tenant Onboarding Complete"]


def test_with_a_bad_stripe_key_onboarding_fails_naming_stripe_auth(monkeypatch, localstripe):
    with Stage(monkeypatch, stripe_api_base=localstripe, stripe_api_key="not-a-key") as stage:
        t = tenant(6)
        execution = stage.start(t)

        assert stage.wait_for_end(execution)["status"] == "FAILED"

        record = stage.record(t["tenantId"])
        assert record["status"] == "failed"
        assert record["failureReason"].startswith("StripeAuthenticationFailed:")
        assert "not-a-key" not in json.dumps(stage.events())
        assert "not-a-key" not in record["failureReason"]
        assert stage.lambdas.invocations["tenant-onboarding-local-create_stripe_customer"] == 1
