"""Network faults: a service that cannot be reached, or answers too late,
for a few attempts. Each is a transient error everywhere: the tasks retry
it under the transient policy and the onboarding ends as it should, with one
of everything; an admin route answers 503 with Retry-After.

The faults are raised below botocore's own retries (before-send), as a real
outage would be, and by a proxy in front of localstripe for Stripe.
"""
import json

import pytest
from chalice.test import Client

from chalicelib.events import APPROVAL_REQUESTED as APPROVAL
from chalicelib.events import ONBOARDING_COMPLETE as COMPLETE
from tests.support import localstripe_customers
from tests.support.faults import NETWORK_FAULTS, FlakyProxy, unreachable
from tests.support.stage import STAGE, Stage, app_client, finalize_body, tenant

# An AWS call each task makes: (the app's client, its operation, when the
# fault starts: at once, or once the tenant waits, so it hits this task and
# not an earlier one making the same call).
TASK_CALLS = {
    "create_tenant_record": ("dynamodb", "dynamodb.PutItem", "start"),
    "create_stripe_customer": ("secretsmanager", "secrets-manager.GetSecretValue", "start"),
    "create_contact_list": ("sesv2", "sesv2.CreateTenant", "start"),
    "await_decision": ("events", "eventbridge.PutEvents", "start"),
    "update_status_and_notify": ("dynamodb", "dynamodb.UpdateItem", "waiting"),
}
# More than botocore's own three tries: the state machine retries the task.
FAILED_SENDS = 4


def approve(stage, execution, before=lambda: None):
    token = stage.wait_for_token(execution, seconds=60)
    before()
    with Client(stage.app, stage_name=STAGE) as client:
        response = client.http.post("/tenant/finalize", headers={"Content-Type": "application/json"},
                                    body=finalize_body(token, "approved"))
    assert response.status_code == 200, response.body


@pytest.mark.parametrize("fault", sorted(NETWORK_FAULTS))
@pytest.mark.parametrize("task", sorted(TASK_CALLS))
def test_an_aws_service_out_of_reach_for_a_few_attempts_still_ends_active(
    monkeypatch, localstripe, task, fault
):
    service, operation, when = TASK_CALLS[task]
    with Stage(monkeypatch, stripe_api_base=localstripe) as stage:
        outages = []

        def cut():
            outages.append(unreachable(app_client(service), operation, FAILED_SENDS, fault))

        def once_asked():  # the wait task has finished its own calls
            stage.wait_until_asked(t["tenantId"])
            cut()

        if when == "start":
            cut()
        t = tenant(80)
        execution = stage.start(t)
        approve(stage, execution, before=once_asked if when == "waiting" else lambda: None)
        [outage] = outages

        assert stage.wait_for_end(execution, seconds=60)["status"] == "SUCCEEDED"
        assert outage.sends > FAILED_SENDS  # it happened, and was got past
        record = stage.record(t["tenantId"])
        assert record["status"] == "active"
        assert [e["detail-type"] for e in stage.events()] == [APPROVAL, COMPLETE]
        assert [c["id"] for c in localstripe_customers(localstripe)
                if c["metadata"].get("tenantId") == t["tenantId"]] == [record["stripeCustomerId"]]
        # the task's repeats were the transient policy's, not the catch-all's two
        assert stage.lambdas.invocations[f"tenant-onboarding-local-{task}"] >= 2


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_stripe_out_of_reach_for_a_few_attempts_still_ends_with_one_customer(
    monkeypatch, localstripe, fault
):
    monkeypatch.setenv("STRIPE_TIMEOUT_SECONDS", "0.5")
    with FlakyProxy(localstripe, [fault] * 4, hang_seconds=1.5) as proxy:
        with Stage(monkeypatch, stripe_api_base=proxy.url) as stage:
            t = tenant(81)
            execution = stage.start(t)
            approve(stage, execution)

            assert stage.wait_for_end(execution, seconds=60)["status"] == "SUCCEEDED"
            record = stage.record(t["tenantId"])
            assert record["status"] == "active"
            assert [c["id"] for c in localstripe_customers(localstripe)
                    if c["metadata"].get("tenantId") == t["tenantId"]] == [record["stripeCustomerId"]]
            assert proxy.requests_seen > 4
            assert stage.lambdas.invocations["tenant-onboarding-local-create_stripe_customer"] >= 2


@pytest.mark.parametrize("fault", sorted(NETWORK_FAULTS))
def test_an_admin_route_hit_by_a_network_fault_answers_503_with_retry_after(stage, client, fault):
    unreachable(app_client("dynamodb"), "dynamodb.Query", 10, fault)

    response = client.http.get("/tenants?status=onboarding")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = json.loads(response.body)
    assert body == {"Code": "ServiceUnavailableError",
                    "Message": "DynamoDB is unavailable right now; try again in 5 seconds"}


def test_a_decision_hit_by_a_network_fault_answers_503_and_can_be_sent_again(stage, client):
    t = tenant(82)
    stage.wait_for_token(stage.start(t))
    stage.wait_until_asked(t["tenantId"])
    unreachable(app_client("stepfunctions"), "sfn.SendTaskSuccess", 3, "read timeout")

    def decide():
        return client.http.post(f"/tenants/{t['tenantId']}/decision",
                                headers={"Content-Type": "application/json"},
                                body='{"status": "approved"}')

    first = decide()
    assert first.status_code == 503, first.body
    assert first.headers["Retry-After"] == "5"
    assert "decisionClaim" not in stage.record(t["tenantId"])  # our claim was released
    assert decide().status_code == 200
    stage.wait_for_status(t["tenantId"], "active", seconds=15)
