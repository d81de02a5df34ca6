"""Every tenant reaches a final state, and an admin can retry one that failed.

Workflow tier: statemachine.json runs in moto's engine against the real
handlers; the admin routes run through chalice.test.Client; the reconciler
is the scheduled function itself, run on demand.
"""
import json

import pytest
from chalice.test import Client

from chalicelib.events import APPROVAL_REQUESTED as APPROVAL
from chalicelib.events import ONBOARDING_COMPLETE as COMPLETE
from chalicelib.events import ONBOARDING_FAILED as FAILED
from chalicelib.workflow import execution_arn
from scripts.local.lambdas import scheduled_event
from tests.support import localstripe_customers
from tests.support.faults import aws_error, fail_first
from tests.support.stage import STAGE, Stage, app_client, app_session, at_once, finalize_body, tenant


@pytest.fixture
def sweep_now(monkeypatch):
    """The reconciler without its grace period (the tests are seconds old)."""
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")


def post(client, path, body=None):
    response = client.http.post(path, headers={"Content-Type": "application/json"},
                                body=json.dumps(body or {}))
    return response.status_code, json.loads(response.body)


def failed_tenant(stage, n):
    """A tenant whose first CreateTenant was refused for good (as the SES quota does)."""
    t = tenant(n)
    fault = fail_first(app_session(), "before-call.sesv2.CreateTenant", 1,
                       aws_error("LimitExceededException", "quota", 400))
    assert stage.wait_for_end(stage.start(t))["status"] == "FAILED"
    assert fault.calls == 1
    assert stage.record(t["tenantId"])["status"] == "failed"
    return t


def test_retry_of_a_failed_tenant_runs_a_new_attempt_that_can_end_active(monkeypatch, localstripe):
    with Stage(monkeypatch, stripe_api_base=localstripe) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        t = failed_tenant(stage, 70)
        first = stage.record(t["tenantId"])

        status, body = post(client, f"/tenants/{t['tenantId']}/retry")

        assert (status, body["tenantId"], body["status"], body["attempt"]) == (
            200, t["tenantId"], "onboarding", 2)
        retried = stage.record(t["tenantId"])
        assert retried["status"] == "onboarding" and retried["attempts"] == 2
        [audit] = retried["retries"]
        assert audit["attempt"] == 2 and audit["retriedBy"] == "local"
        assert audit["previousStatus"] == "failed" and "quota" in audit["previousReason"]
        assert "failureReason" not in retried
        execution = execution_arn(stage.state_machine_arn, f"{t['tenantId']}-attempt-2")
        token = stage.wait_for_token(execution)
        stage.wait_until_asked(t["tenantId"])
        assert stage.kinds(t["tenantId"]) == [FAILED, APPROVAL]  # a fresh wait asks again
        assert post(client, "/tenant/finalize", json.loads(finalize_body(token, "approved")))[0] == 200
        assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        final = stage.record(t["tenantId"])
        assert final["status"] == "active"
        # what the first attempt made is reused: one customer, the same one
        assert final["stripeCustomerId"] == first["stripeCustomerId"]
        assert [c["id"] for c in localstripe_customers(localstripe)
                if c["metadata"].get("tenantId") == t["tenantId"]] == [first["stripeCustomerId"]]
        assert final["createdAt"] == first["createdAt"]
        events = [e for e in stage.events() if e["detail"]["tenantId"] == t["tenantId"]]
        assert [e["detail-type"] for e in events] == [FAILED, APPROVAL, COMPLETE]
        assert events[-1]["detail"]["attempt"] == 2
        assert events[-1]["detail"]["eventKey"] != events[0]["detail"]["eventKey"]


def test_retry_of_a_timed_out_tenant_works_the_same_way(monkeypatch):
    with Stage(monkeypatch, approval_timeout_seconds=2) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        t = tenant(71)
        assert stage.wait_for_end(stage.start(t))["status"] == "SUCCEEDED"
        assert stage.record(t["tenantId"])["status"] == "timeout"

        status, body = post(client, f"/tenants/{t['tenantId']}/retry")

        assert status == 200 and body["attempt"] == 2
        execution = execution_arn(stage.state_machine_arn, f"{t['tenantId']}-attempt-2")
        stage.wait_for_token(execution)
        assert stage.record(t["tenantId"])["retries"][0]["previousStatus"] == "timeout"


def test_retry_answers_404_for_an_unknown_tenant_and_409_naming_any_other_status(stage, client):
    assert post(client, "/tenants/00000000-0000-4000-8000-999999999999/retry")[0] == 404
    t = tenant(72)
    execution = stage.start(t)
    stage.wait_for_token(execution)

    status, body = post(client, f"/tenants/{t['tenantId']}/retry")

    assert status == 409
    assert "is onboarding: only a failed or timed-out onboarding can be retried" in body["Message"]


def test_two_retries_at_once_start_one_attempt(stage, client):
    t = failed_tenant(stage, 73)
    def retry():
        with Client(stage.app, stage_name=STAGE) as own:
            return post(own, f"/tenants/{t['tenantId']}/retry")

    answers = at_once(retry)

    assert sorted(status for status, _ in answers) == [200, 409]
    assert stage.record(t["tenantId"])["attempts"] == 2
    executions = stage.sfn.list_executions(stateMachineArn=stage.state_machine_arn)["executions"]
    assert sorted(e["name"] for e in executions if e["name"].startswith(t["tenantId"])) == [
        t["tenantId"], f"{t['tenantId']}-attempt-2"]


def test_a_retry_whose_execution_cannot_start_puts_the_tenant_back(stage, client):
    t = failed_tenant(stage, 74)
    fail_first(app_client("stepfunctions"), "before-call.sfn.StartExecution", 10,
               aws_error("ServiceUnavailable", "down", 503))

    status, body = post(client, f"/tenants/{t['tenantId']}/retry")

    assert status == 503 and body["Code"] == "ServiceUnavailableError"
    record = stage.record(t["tenantId"])
    assert record["status"] == "failed" and "quota" in record["failureReason"]
    assert "attempts" not in record and "retries" not in record


# --- the reconciler -----------------------------------------------------------------
def test_the_reconciler_fails_a_tenant_whose_execution_was_aborted(stage, sweep_now):
    t = tenant(75)
    execution = stage.start(t)
    stage.wait_for_token(execution)
    stage.wait_until_asked(t["tenantId"])
    stage.sfn.stop_execution(executionArn=execution, error="Aborted", cause="by hand")
    stage.wait_for_end(execution)
    assert stage.record(t["tenantId"])["status"] == "onboarding"  # stuck, until now

    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())

    record = stage.record(t["tenantId"])
    assert record["status"] == "failed"
    assert "ended ABORTED without setting a final status" in record["failureReason"]
    assert counts["failed (stuck)"] == 1
    assert stage.kinds(t["tenantId"]) == [APPROVAL, FAILED]
    assert stage.lambdas.invoke_json("reconcile", scheduled_event()).get("failed (stuck)") is None  # once


def test_an_ended_execution_is_failed_at_once_so_an_admin_can_retry_it_now(stage, client):
    # given a tenant waiting for approval whose execution was stopped a moment ago
    t = tenant(76)
    execution = stage.start(t)
    stage.wait_for_token(execution)
    stage.wait_until_asked(t["tenantId"])
    stage.sfn.stop_execution(executionArn=execution, error="Aborted", cause="by hand")
    stage.wait_for_end(execution)

    # when the reconciler runs with its default grace period (10 minutes)
    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())

    # then it does not wait: the run has ended, and the tenant can be retried now
    assert counts["failed (stuck)"] == 1
    assert "ended ABORTED" in stage.record(t["tenantId"])["failureReason"]
    status, body = post(client, f"/tenants/{t['tenantId']}/retry")
    assert (status, body["attempt"]) == (200, 2)


def test_a_young_record_whose_execution_has_not_started_is_left_to_the_workflow(stage):
    # given a record made a moment ago whose execution is not visible yet (as
    # between a retry's write and its start)
    t = tenant(80)
    stage.lambdas.invoke_json("create_tenant_record", {"tenant": t})
    assert stage.record(t["tenantId"])["status"] == "onboarding"

    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())  # default grace: 10 minutes

    assert stage.record(t["tenantId"])["status"] == "onboarding"
    assert "failed (stuck)" not in counts


@pytest.mark.parametrize("ended", ["ABORTED", "FAILED", "TIMED_OUT", "SUCCEEDED"])
def test_the_reconciler_acts_at_once_on_every_status_of_an_ended_run(stage, monkeypatch, ended):
    from chalicelib.workflow import OnboardingWorkflow

    t = tenant(81)
    stage.lambdas.invoke_json("create_tenant_record", {"tenant": t})
    monkeypatch.setattr(OnboardingWorkflow, "execution_status", lambda self, tenant_id, attempt=1: ended)

    stage.lambdas.invoke_json("reconcile", scheduled_event())  # default grace: 10 minutes

    record = stage.record(t["tenantId"])
    assert record["status"] == "failed"
    assert f"ended {ended} without setting a final status" in record["failureReason"]


def test_an_offboarding_whose_run_ended_is_put_back_at_once(stage, monkeypatch):
    from chalicelib import dependencies as deps
    from chalicelib.clock import utc_now
    from chalicelib.workflow import OffboardingWorkflow

    # given a failed tenant an admin began offboarding a moment ago, whose run has ended
    t = tenant(83)
    stage.lambdas.invoke_json("create_tenant_record", {"tenant": t})
    repository = deps.tenants()
    record = repository.finish(t["tenantId"], "failed", utc_now(), {"failureReason": "quota"})
    repository.begin_offboarding(t["tenantId"], record, {
        "requestedBy": "ops@example.com", "requestedAt": utc_now(), "reason": "gone", "attempt": 1})
    monkeypatch.setattr(OffboardingWorkflow, "execution_status",
                        lambda self, tenant_id, attempt=1: "ABORTED")

    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())  # default grace: 10 minutes

    # then the tenant is back where it was, with why, and can be offboarded again now
    back = stage.record(t["tenantId"])
    assert counts["offboarding ended (stuck)"] == 1
    assert back["status"] == "failed"
    assert "ended ABORTED without finishing" in back["offboardingFailure"]["reason"]


def test_a_running_execution_is_still_left_alone(stage):
    t = tenant(82)
    execution = stage.start(t)
    stage.wait_for_token(execution)

    counts = stage.lambdas.invoke_json("reconcile", scheduled_event())

    assert stage.record(t["tenantId"])["status"] == "onboarding"
    assert "failed (stuck)" not in counts


def test_the_reconciler_publishes_an_outcome_that_never_went_out(stage, sweep_now):
    t = tenant(77)
    # EventBridge refuses every Complete the workflow tries to publish
    refused = fail_first(app_session(), "before-call.eventbridge.PutEvents", 1000,
                         aws_error("InternalFailure", "down", 500), skip=1)
    execution = stage.start(t)
    token = stage.wait_for_token(execution)
    with Client(stage.app, stage_name=STAGE) as client:
        assert post(client, "/tenant/finalize", json.loads(finalize_body(token, "approved")))[0] == 200
    stage.wait_for_end(execution, seconds=60)
    record = stage.record(t["tenantId"])
    assert record["status"] == "active" and record["outcomeDue"] == "active"
    assert stage.kinds(t["tenantId"]) == [APPROVAL]
    refused.remaining = 0  # EventBridge is back

    stage.lambdas.invoke_json("reconcile", scheduled_event())
    stage.lambdas.invoke_json("reconcile", scheduled_event())

    assert stage.kinds(t["tenantId"]) == [APPROVAL, COMPLETE]
    record = stage.record(t["tenantId"])
    assert "outcomeDue" not in record and record["outcomeEvent"] == COMPLETE


def test_the_reconciler_reminds_once_per_wait_before_the_deadline(monkeypatch, sweep_now):
    monkeypatch.setenv("APPROVAL_REMINDER_SECONDS", "3600")
    with Stage(monkeypatch, approval_timeout_seconds=1800) as stage:
        t = tenant(78)
        stage.wait_for_token(stage.start(t))
        stage.wait_until_asked(t["tenantId"])

        stage.lambdas.invoke_json("reconcile", scheduled_event())
        stage.lambdas.invoke_json("reconcile", scheduled_event())

        reminders = [e for e in stage.events() if e["detail-type"] ==
                     "Tenant Onboarding Approval Reminder"]
        assert len(reminders) == 1
        assert reminders[0]["detail"]["decideBy"] == stage.record(t["tenantId"])["decideBy"]
        assert 0 < reminders[0]["detail"]["secondsLeft"] <= 1800


def test_a_retry_waits_for_the_last_attempt_to_finish(stage, client):
    # the failure is recorded, but its event is still being retried: a new
    # attempt now would race the old one's last step
    t = tenant(79)
    fail_first(app_session(), "before-call.sesv2.CreateTenant", 1,
               aws_error("LimitExceededException", "quota", 400))
    fail_first(app_session(), "before-call.eventbridge.PutEvents", 4,
               aws_error("InternalFailure", "down", 500), skip=0)
    execution = stage.start(t)
    stage.wait_for_status(t["tenantId"], "failed")

    status, body = post(client, f"/tenants/{t['tenantId']}/retry")

    assert status == 409 and "attempt 1 is still finishing" in body["Message"]
    assert stage.wait_for_end(execution, seconds=60)["status"] == "FAILED"
    assert post(client, f"/tenants/{t['tenantId']}/retry")[0] == 200
