"""Tenants who don't stay give back what onboarding took; active tenants can be offboarded.

Workflow tier: both state machines (statemachine.json, offboarding.json) run
in moto's engine against the real handlers, with localstripe and SES's
quotas where a test needs them.
"""
import json

import boto3
import pytest
import requests
from chalice.test import Client

from chalicelib import dependencies as deps
from chalicelib.events import APPROVAL_REQUESTED as APPROVAL
from chalicelib.events import OFFBOARDING_COMPLETE as OFFBOARDED
from chalicelib.events import OFFBOARDING_FAILED
from chalicelib.subscribers import subscribers_of
from scripts.local.lambdas import scheduled_event
from tests.support import localstripe_customers, unsigned_id_token
from tests.support.faults import FlakyProxy, aws_error, fail_first
from tests.support.stage import (
    REGION,
    STAGE,
    Stage,
    app_client,
    app_session,
    at_once,
    finalize_body,
)


def post(client, path, body):
    response = client.http.post(path, headers={"Content-Type": "application/json"},
                                body=json.dumps(body) if not isinstance(body, str) else body)
    return response.status_code, json.loads(response.body)


def decide(stage, client, t, status, reason=None):
    execution = stage.start(t)
    token = stage.wait_for_token(execution)
    stage.wait_until_asked(t["tenantId"])
    body = json.loads(finalize_body(token, status, reason))
    assert post(client, "/tenant/finalize", body)[0] == 200
    assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
    return stage.record(t["tenantId"])


def customer_exists(base, customer_id):
    return customer_id in {c["id"] for c in localstripe_customers(base)}


def place_exists(stage, place):
    """Whether what onboarding made for a record's contact list (its SES tenant in
    subscriber-store mode, its SES list in list-per-tenant mode) is still there."""
    if place.get("sesTenant"):
        return place["sesTenant"] in {t["TenantName"] for t in stage.sesv2.list_tenants()["Tenants"]}
    return any(c["ContactListName"] == place["list"]
               for c in stage.sesv2.list_contact_lists().get("ContactLists", []))


@pytest.fixture
def stripe_stage(monkeypatch, localstripe):
    with Stage(monkeypatch, stripe_api_base=localstripe) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        stage.client = client
        yield stage


# --- release on reject and timeout ----------------------------------------------------
def test_a_rejected_tenant_gives_back_its_list_its_customer_and_its_login(stripe_stage, localstripe):
    stage = stripe_stage
    t = stage.tenant_with_login(90)
    execution = stage.start(t)
    stage.wait_until_asked(t["tenantId"])
    before = stage.record(t["tenantId"])
    customer, contact_list = before["stripeCustomerId"], before["list"]
    assert before["listMode"] == "subscriber-store" and before["sesTenant"]
    assert customer_exists(localstripe, customer) and place_exists(stage, before)

    assert post(stage.client, f"/tenants/{t['tenantId']}/decision",
                {"status": "rejected", "reason": "duplicate company"})[0] == 200
    assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

    record = stage.record(t["tenantId"])
    assert record["status"] == "rejected"
    assert set(record["released"]) == {"user", "stripeCustomer", "contactList"}
    assert record["released"]["stripeCustomer"]["customerId"] == customer
    assert record["released"]["contactList"]["list"] == contact_list
    assert record["released"]["contactList"]["sesTenant"] == before["sesTenant"]
    assert not {"stripeCustomerId", "list", "sesTenant", "listMode"} & set(record)
    assert not customer_exists(localstripe, customer)
    assert not place_exists(stage, before)
    assert stage.login_enabled(t["tenantId"]) is False
    assert stage.kinds(t["tenantId"]) == [APPROVAL, "Tenant Onboarding Rejected"]
    assert "Release Rejected Tenant" in stage.states_visited(execution)


def test_a_timed_out_tenant_gives_back_its_list_and_customer_but_keeps_its_login(
    monkeypatch, localstripe
):
    with Stage(monkeypatch, stripe_api_base=localstripe, approval_timeout_seconds=2) as stage:
        t = stage.tenant_with_login(91)
        execution = stage.start(t)
        stage.wait_until_asked(t["tenantId"])
        before = stage.record(t["tenantId"])
        customer = before["stripeCustomerId"]
        assert before["listMode"] == "subscriber-store" and place_exists(stage, before)

        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        record = stage.record(t["tenantId"])
        assert record["status"] == "timeout"
        assert set(record["released"]) == {"stripeCustomer", "contactList"}
        assert record["released"]["contactList"]["sesTenant"] == before["sesTenant"]
        assert not {"stripeCustomerId", "list", "sesTenant", "listMode"} & set(record)
        assert not customer_exists(localstripe, customer)
        assert not place_exists(stage, before)
        assert stage.login_enabled(t["tenantId"]) is True


def test_quota_freed_by_a_rejection_lets_a_failed_tenant_be_retried(monkeypatch):
    """One contact list per account: A holds it, B fails; rejecting A frees it for B."""
    with Stage(monkeypatch, enforce_ses_quotas=True, contact_list_mode="list-per-tenant") as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        a, b = stage.tenant_with_login(92), stage.tenant_with_login(93)
        stage.start(a)
        stage.wait_until_asked(a["tenantId"])
        assert stage.wait_for_end(stage.start(b))["status"] == "FAILED"
        assert "quota" in stage.record(b["tenantId"])["failureReason"]

        assert post(client, f"/tenants/{a['tenantId']}/decision",
                    {"status": "rejected", "reason": "not a fit"})[0] == 200
        stage.wait_for_status(a["tenantId"], "rejected")
        status, body = post(client, f"/tenants/{b['tenantId']}/retry", {})

        assert status == 200 and body["attempt"] == 2
        record = stage.wait_until_asked(b["tenantId"])
        assert record["list"] == f"tenant-{b['tenantId']}"


def test_a_release_that_fails_for_good_still_ends_the_tenant_and_is_reported(
    stripe_stage, monkeypatch
):
    stage = stripe_stage
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    fail_first(app_session(), "before-call.sesv2.DeleteTenant", 100,
               aws_error("AccessDeniedException", "not allowed", 400))
    t = stage.tenant_with_login(94)

    record = decide(stage, stage.client, t, "rejected", "spam")

    assert record["status"] == "rejected"
    assert record["releaseFailure"]["what"] == ["user", "stripeCustomer", "contactList"]
    assert "AccessDenied" in record["releaseFailure"]["reason"]
    assert stage.kinds(t["tenantId"]) == [APPROVAL, "Tenant Onboarding Rejected"]
    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())
    assert counts["release failed"] == 1


def test_a_retried_timed_out_tenant_gets_a_new_customer_and_list(monkeypatch, localstripe):
    with Stage(monkeypatch, stripe_api_base=localstripe, approval_timeout_seconds=2) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        t = stage.tenant_with_login(95)
        execution = stage.start(t)
        stage.wait_until_asked(t["tenantId"])
        first = stage.record(t["tenantId"])["stripeCustomerId"]
        stage.wait_for_end(execution)  # a retry waits for the last attempt to end (409)
        assert stage.record(t["tenantId"])["status"] == "timeout"

        assert post(client, f"/tenants/{t['tenantId']}/retry", {})[0] == 200
        record = stage.wait_until_asked(t["tenantId"])

        assert record["stripeCustomerId"] != first  # the released one stays deleted
        assert customer_exists(localstripe, record["stripeCustomerId"])
        assert not customer_exists(localstripe, first)
        assert place_exists(stage, record)
        assert "released" not in record
        assert record["retries"][0]["released"]["stripeCustomer"]["customerId"] == first


# --- offboarding -------------------------------------------------------------------
def offboard(stage, client, tenant_id, reason="contract ended"):
    return post(client, f"/tenants/{tenant_id}/offboarding", {"reason": reason})


def test_offboarding_an_active_tenant_releases_everything_and_keeps_the_record(
    stripe_stage, localstripe
):
    stage = stripe_stage
    t = stage.tenant_with_login(96)
    active = decide(stage, stage.client, t, "approved")
    customer = active["stripeCustomerId"]

    status, body = offboard(stage, stage.client, t["tenantId"])

    assert (status, body) == (202, {"tenantId": t["tenantId"], "status": "offboarding",
                                    "attempt": 1})
    record = stage.wait_for_status(t["tenantId"], "offboarded")
    stage.wait_for_event(t["tenantId"], OFFBOARDED)
    assert record["offboardedBy"] == "local" and record["offboardReason"] == "contract ended"
    assert record["offboardedAt"] and record["createdAt"] == active["createdAt"]
    assert set(record["released"]) == {"user", "stripeCustomer", "contactList"}
    assert stage.login_enabled(t["tenantId"]) is False
    assert not customer_exists(localstripe, customer)
    assert not place_exists(stage, active)
    assert stage.offboarding_ended(t["tenantId"]).count(OFFBOARDED) == 1
    events = [e for e in stage.events() if e["detail"]["tenantId"] == t["tenantId"]]
    assert events[-1]["detail"]["reason"] == "contract ended"
    listed = stage.client.http.get("/tenants?status=offboarded")
    assert t["tenantId"] in {x["tenantId"] for x in json.loads(listed.body)["tenants"]}


def test_offboarding_answers_400_404_and_409_with_reasons(stage, client):
    t = stage.tenant_with_login(97)
    assert post(client, f"/tenants/{t['tenantId']}/offboarding", {})[0] == 400
    assert post(client, f"/tenants/{t['tenantId']}/offboarding", {"reason": "  "})[0] == 400
    assert post(client, f"/tenants/{t['tenantId']}/offboarding", "not json")[0] == 400
    assert offboard(stage, client, "00000000-0000-4000-8000-999999999999")[0] == 404
    stage.start(t)
    stage.wait_until_asked(t["tenantId"])

    status, body = offboard(stage, client, t["tenantId"])

    assert status == 409 and "is still onboarding" in body["Message"]


def test_offboarding_twice_at_once_resolves_once(stage, client):
    t = stage.tenant_with_login(98)
    decide(stage, client, t, "approved")
    def ask():
        with Client(stage.app, stage_name=STAGE) as own:
            return offboard(stage, own, t["tenantId"])

    answers = at_once(ask)

    assert sorted(code for code, _ in answers) == [202, 409]
    stage.wait_for_status(t["tenantId"], "offboarded")
    assert stage.offboarding_ended(t["tenantId"]).count(OFFBOARDED) == 1
    status, body = offboard(stage, client, t["tenantId"])
    assert status == 409 and "is already offboarded" in body["Message"]


@pytest.mark.parametrize("gone", ["stripe customer", "contact list", "cognito user"])
def test_offboarding_completes_when_something_was_already_deleted_by_hand(
    stripe_stage, localstripe, gone
):
    stage = stripe_stage
    t = stage.tenant_with_login(99)
    record = decide(stage, stage.client, t, "approved")
    if gone == "stripe customer":
        requests.delete(f"{localstripe}/v1/customers/{record['stripeCustomerId']}",
                        auth=("sk_test_local", "")).raise_for_status()
    elif gone == "contact list":  # its SES tenant
        stage.sesv2.delete_tenant(TenantName=record["sesTenant"])
    else:
        boto3.client("cognito-idp", region_name=REGION).admin_delete_user(
            UserPoolId=stage.resources.ref("UserPool"), Username=t["tenantId"])

    offboard(stage, stage.client, t["tenantId"])

    done = stage.wait_for_status(t["tenantId"], "offboarded")
    existed = {what: details["existed"] for what, details in done["released"].items()}
    key = {"stripe customer": "stripeCustomer", "contact list": "contactList",
           "cognito user": "user"}[gone]
    assert existed[key] is False and sum(existed.values()) == 2
    assert stage.offboarding_ended(t["tenantId"]).count(OFFBOARDED) == 1


def test_offboarding_rides_out_a_stripe_outage(monkeypatch, localstripe):
    with FlakyProxy(localstripe, []) as proxy:
        with Stage(monkeypatch, stripe_api_base=proxy.url) as stage, \
                Client(stage.app, stage_name=STAGE) as client:
            t = stage.tenant_with_login(100)
            customer = decide(stage, client, t, "approved")["stripeCustomerId"]
            proxy.faults.extend([503] * 4)

            offboard(stage, client, t["tenantId"])

            stage.wait_for_status(t["tenantId"], "offboarded", seconds=60)
            assert not customer_exists(localstripe, customer)
            assert stage.offboarding_ended(t["tenantId"]).count(OFFBOARDED) == 1


def test_a_crash_after_a_release_before_it_is_recorded_releases_once(
    stripe_stage, localstripe, monkeypatch
):
    stage = stripe_stage
    t = stage.tenant_with_login(101)
    record = decide(stage, stage.client, t, "approved")
    # the list is deleted, then the function dies before recording it: the step runs again
    with deps.within("release_tenant_resources"):  # that function's own repository
        repository = deps.tenants()
    record_release = repository.mark_released
    crashes = []

    def crash_once(tenant_id, what, details, removes=()):
        if what == "contactList" and not crashes:
            crashes.append(details)
            raise RuntimeError("the function died here")
        return record_release(tenant_id, what, details, removes)

    monkeypatch.setattr(repository, "mark_released", crash_once)

    offboard(stage, stage.client, t["tenantId"])

    done = stage.wait_for_status(t["tenantId"], "offboarded", seconds=60)
    assert crashes and crashes[0]["existed"] is True
    assert done["released"]["contactList"]["existed"] is False  # the redo found it gone
    assert not place_exists(stage, record)
    assert done["released"]["contactList"]["list"] == record["list"]
    assert "list" not in done and "stripeCustomerId" not in done
    assert stage.offboarding_ended(t["tenantId"]).count(OFFBOARDED) == 1


def test_an_offboarding_that_fails_for_good_puts_the_tenant_back_with_why(stage, client):
    t = stage.tenant_with_login(102)
    decide(stage, client, t, "approved")
    fail_first(app_session(), "before-call.cognito-identity-provider.AdminDisableUser", 100,
               aws_error("AccessDeniedException", "no", 400))

    assert offboard(stage, client, t["tenantId"])[0] == 202

    stage.wait_for_event(t["tenantId"], OFFBOARDING_FAILED, seconds=60)
    back = stage.record(t["tenantId"])
    assert back["status"] == "active"
    assert "AccessDenied" in back["offboardingFailure"]["reason"]
    events = [e for e in stage.events() if e["detail"]["tenantId"] == t["tenantId"]]
    assert [e["detail-type"] for e in events][-1] == OFFBOARDING_FAILED
    assert "AccessDenied" in events[-1]["detail"]["reason"]
    status, body = offboard(stage, client, t["tenantId"], "second try")
    assert status == 202 and body["attempt"] == 2


def test_an_offboarding_finished_but_not_told_tells_it_finished_not_failed(stage, client):
    t = stage.tenant_with_login(103)
    decide(stage, client, t, "approved")
    # EventBridge refuses the Complete event past every retry, then is back
    refused = fail_first(app_client("events"), "before-call.eventbridge.PutEvents", 10,
                         aws_error("InternalFailure", "down", 500))

    offboard(stage, client, t["tenantId"])

    kinds_after = stage.offboarding_ended(t["tenantId"])
    assert refused.remaining == 0 and stage.record(t["tenantId"])["status"] == "offboarded"
    assert OFFBOARDING_FAILED not in kinds_after
    assert kinds_after.count(OFFBOARDED) == 1


def test_a_tenant_offboarded_with_an_outcome_still_due_is_told_and_swept(stage, client, monkeypatch):
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    t = stage.tenant_with_login(104)
    fail_first(app_session(), "before-call.eventbridge.PutEvents", 1000,
               aws_error("InternalFailure", "down", 500), skip=1)  # the outcome never goes out
    execution = stage.start(t)
    token = stage.wait_for_token(execution)
    stage.wait_until_asked(t["tenantId"])
    assert post(client, "/tenant/finalize", json.loads(finalize_body(token, "rejected", "spam")))[0] == 200
    stage.wait_for_end(execution, seconds=90)
    assert stage.record(t["tenantId"])["outcomeDue"] == "rejected"

    # EventBridge is back: a new session without the fault
    deps.forget("session", "client:events", "publisher", "reconciler")
    offboard(stage, client, t["tenantId"], "duplicate")
    stage.wait_for_status(t["tenantId"], "offboarded")
    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())

    assert "errors" not in counts and counts.get("outcome republished") == 1
    kinds_now = stage.offboarding_ended(t["tenantId"])
    assert kinds_now.count("Tenant Onboarding Rejected") == 1 and kinds_now.count(OFFBOARDED) == 1
    assert "outcomeDue" not in stage.record(t["tenantId"])


def test_offboarding_ends_the_report_of_a_failed_release(stripe_stage, monkeypatch):
    stage = stripe_stage
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    fault = fail_first(app_session(), "before-call.sesv2.DeleteTenant", 100,
                       aws_error("AccessDeniedException", "not allowed", 400))
    t = stage.tenant_with_login(105)
    decide(stage, stage.client, t, "rejected", "spam")
    assert stage.lambdas.invoke_json("reconcile", scheduled_event())["release failed"] == 1
    fault.remaining = 0

    offboard(stage, stage.client, t["tenantId"], "purge")
    done = stage.wait_for_status(t["tenantId"], "offboarded")

    assert "releaseFailure" not in done and "releaseDue" not in done
    assert "contactList" in done["released"]
    assert "release failed" not in stage.lambdas.invoke_json("reconcile", scheduled_event())


# --- the subscriber store's place ----------------------------------------------------------
def subscriber_items(stage, tenant_id):
    return stage.ddb.query(
        TableName=stage.table_name, KeyConditionExpression="pk = :p", ConsistentRead=True,
        ExpressionAttributeValues={":p": {"S": subscribers_of(tenant_id)}})["Items"]


def with_subscribers(stage, client, t, n):
    """An active tenant with ``n`` subscribers, imported as the tenant would."""
    record = decide(stage, client, t, "approved")
    rows = [{"email": f"s{k}@example.com"} for k in range(n)]
    response = client.http.post("/me/subscribers/import", body=json.dumps(rows), headers={
        "Content-Type": "application/json", "Authorization": unsigned_id_token(t["tenantId"])})
    assert json.loads(response.body)["added"] == n
    return record


def test_offboarding_removes_every_subscriber_and_the_ses_tenant(stage, client):
    t = stage.tenant_with_login(110)
    record = with_subscribers(stage, client, t, 150)  # two transactions' worth
    assert len(subscriber_items(stage, t["tenantId"])) == 150 and place_exists(stage, record)

    offboard(stage, client, t["tenantId"])

    done = stage.wait_for_status(t["tenantId"], "offboarded")
    assert subscriber_items(stage, t["tenantId"]) == [] and done["subscribers"] == 0
    assert not place_exists(stage, record)
    assert done["released"]["contactList"]["sesTenant"] == record["sesTenant"]
    assert not {"list", "sesTenant", "listMode"} & set(done)


def test_a_release_that_dies_between_batches_finishes_on_its_retry_with_an_exact_count(
    stage, client, monkeypatch
):
    t = stage.tenant_with_login(111)
    record = with_subscribers(stage, client, t, 150)
    with deps.within("release_tenant_resources"):  # that function's own store
        store = deps.subscriber_store()
    transact, crashed = store._transact, []

    def die_after_the_first_batch(items):
        if crashed:
            return transact(items)
        transact(items)
        crashed.append(len(items))
        raise RuntimeError("the function died between two batches")

    monkeypatch.setattr(store, "_transact", die_after_the_first_batch)
    offboard(stage, client, t["tenantId"])

    done = stage.wait_for_status(t["tenantId"], "offboarded", seconds=60)
    assert crashed == [100]  # 99 subscribers and the counter, written before the crash
    assert subscriber_items(stage, t["tenantId"]) == [] and done["subscribers"] == 0
    assert not place_exists(stage, record)
    assert stage.offboarding_ended(t["tenantId"]).count(OFFBOARDED) == 1
