"""Handler tier: every Lambda and the route through chalice.test.Client,
with real-shaped sample events from tests/events/."""
import copy
import json
import logging

import pytest
from chalice.test import Client

from tests.support import load_event
from tests.support.stage import STAGE, Stage

SUB = "5f3a1c2e-8b9d-4e7f-a123-4b5c6d7e8f90"


def executions(stage):
    return stage.sfn.list_executions(stateMachineArn=stage.state_machine_arn)["executions"]


# --- the Cognito trigger -------------------------------------------------------
def test_confirmed_sign_up_starts_one_execution_named_after_the_sub(stage, client):
    event = load_event("post_confirmation.json")

    response = client.lambda_.invoke("post_confirmation", event)

    assert response.payload == event  # Cognito needs its event back unchanged
    [execution] = executions(stage)
    assert execution["name"] == SUB
    started = stage.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"]) == {
        "tenant": {"tenantId": SUB, "email": "ada@example.com", "name": "Ada Ltd"}
    }


def test_a_repeated_trigger_starts_nothing_new(stage, client):
    event = load_event("post_confirmation.json")

    client.lambda_.invoke("post_confirmation", event)
    again = client.lambda_.invoke("post_confirmation", event)

    assert again.payload == event
    assert len(executions(stage)) == 1


def test_a_password_reset_confirmation_starts_nothing(stage, client):
    event = load_event("post_confirmation_forgot_password.json")

    response = client.lambda_.invoke("post_confirmation", event)

    assert response.payload == event
    assert executions(stage) == []


# --- the task Lambdas ----------------------------------------------------------
def test_create_tenant_record_task_writes_the_record(stage, client):
    result = client.lambda_.invoke("create_tenant_record", load_event("task_tenant.json"))

    assert result.payload["stripeConfigured"] is False
    record = stage.record(SUB)
    assert record["status"] == "onboarding"
    assert record["createdAt"] == result.payload["createdAt"]


def test_create_contact_list_task_stores_the_list_and_makes_the_ses_tenant(stage, client):
    task = load_event("task_tenant.json")
    client.lambda_.invoke("create_tenant_record", task)

    result = client.lambda_.invoke("create_contact_list", task)

    place = {"list": f"subscribers-{SUB}", "listMode": "subscriber-store",
             "sesTenant": f"tenant-{SUB}"}
    assert result.payload == place
    record = stage.record(SUB)
    assert {key: record[key] for key in place} == place
    tags = stage.sesv2.get_tenant(TenantName=f"tenant-{SUB}")["Tenant"]["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "tenant-onboarding:stage": "local", "tenant-onboarding:tenantId": SUB}
    # a retry of the task finds both made, and makes nothing twice
    assert client.lambda_.invoke("create_contact_list", task).payload == place
    assert len(stage.sesv2.list_tenants()["Tenants"]) == 1


def test_update_tenant_with_stripe_id_task_stores_the_customer(stage, client):
    client.lambda_.invoke("create_tenant_record", load_event("task_tenant.json"))

    client.lambda_.invoke(
        "update_tenant_with_stripe_id", {"tenantId": SUB, "stripeCustomerId": "cus_123"}
    )

    assert stage.record(SUB)["stripeCustomerId"] == "cus_123"


def test_await_decision_task_keeps_the_token_and_requests_approval(stage, client):
    client.lambda_.invoke("create_tenant_record", load_event("task_tenant.json"))
    task = {
        **load_event("task_tenant.json"),
        "taskToken": "token-1234567890",
        "waitStartedAt": "2026-11-26T10:00:00.000Z",
        "approvalWindowSeconds": 86400,
    }

    result = client.lambda_.invoke("await_decision", task)
    again = client.lambda_.invoke("await_decision", task)  # a retry asks nothing twice

    decide_by = result.payload["decideBy"]
    assert result.payload == again.payload == {"awaitingDecision": True, "decideBy": decide_by}
    # the window counts from this attempt's start (Step Functions restarts it on a retry)
    asked_at = stage.record(SUB)["pendingDecision"]["requestedAt"]
    assert _seconds_between(asked_at, decide_by) == 86400
    pending = stage.record(SUB)["pendingDecision"]
    assert pending["taskToken"] == "token-1234567890"
    assert pending["decideBy"] == decide_by and pending["waitId"] == "2026-11-26T10:00:00.000Z"
    [event] = stage.events()
    assert event["detail-type"] == "Tenant Onboarding Approval Requested"
    assert event["detail"] == {
        "tenantId": SUB, "email": "ada@example.com", "name": "Ada Ltd",
        "status": "onboarding", "decideBy": decide_by,
        "eventKey": f"{SUB}:Tenant Onboarding Approval Requested:2026-11-26T10:00:00.000Z",
    }
    assert "token-1234567890" not in json.dumps(event)


def test_update_status_and_notify_task_sets_status_and_publishes(stage, client):
    task = load_event("task_tenant.json")
    client.lambda_.invoke("create_tenant_record", task)

    result = client.lambda_.invoke(
        "update_status_and_notify",
        {**task, "outcome": {"status": "active", "decision": {"status": "approved"}}},
    )

    assert result.payload == {"status": "active", "published": True}
    assert stage.record(SUB)["status"] == "active"
    assert [e["detail-type"] for e in stage.events()] == ["Tenant Onboarding Complete"]


def test_create_stripe_customer_task_creates_one_customer(monkeypatch, localstripe):
    with Stage(monkeypatch, stripe_api_base=localstripe) as stage:
        with Client(stage.app, stage_name=STAGE) as client:
            task = copy.deepcopy(load_event("task_tenant.json"))
            task["tenant"]["tenantId"] = "11111111-2222-4333-8444-555555555555"
            client.lambda_.invoke("create_tenant_record", task)

            first = client.lambda_.invoke("create_stripe_customer", task)

            assert first.payload["customerId"].startswith("cus_")


# --- the route -----------------------------------------------------------------
def post(client, body, content_type="application/json"):
    return client.http.post(
        "/tenant/finalize", headers={"Content-Type": content_type}, body=body
    )


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("", "request body is required"),
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"status": "approved"}', "taskToken is required"),
        ('{"taskToken": "", "status": "approved"}', "taskToken is required"),
        ('{"taskToken": "t", "status": "maybe"}', 'status must be "approved" or "rejected"'),
        ('{"taskToken": "t", "status": "approved", "reason": 5}', "reason must be a string"),
        ('{"taskToken": "t", "status": "approved", "extra": 1}', "unknown field(s): extra"),
    ],
)
def test_finalize_rejects_bad_input_with_a_clear_400(client, body, fragment):
    response = post(client, body)

    assert response.status_code == 400
    assert fragment in json.loads(response.body)["Message"]


def test_finalize_with_a_token_step_functions_does_not_know_is_a_400(client):
    response = post(client, json.dumps({"taskToken": "not-a-real-token", "status": "approved"}))

    assert response.status_code == 400
    assert "not a valid Step Functions task token" in json.loads(response.body)["Message"]


def test_the_trigger_makes_one_aws_call_on_the_normal_path(stage, client):
    import boto3

    from chalicelib import dependencies as deps

    calls = []
    session = boto3.session.Session(region_name="us-east-1")
    session.events.register("before-call", lambda event_name, **_: calls.append(event_name))
    deps.override("session", session)

    client.lambda_.invoke("post_confirmation", load_event("post_confirmation.json"))

    assert calls == ["before-call.sfn.StartExecution"]


def test_the_trigger_never_imports_stripe(tmp_path):
    import subprocess
    import sys

    from tests.support import EVENTS_DIR, PROJECT_DIR

    script = f"""
import json, sys
from chalicelib import dependencies as deps
class Workflow:
    def start(self, tenant): self.started = tenant
deps.override("workflow", Workflow())
import app
event = json.load(open({str(EVENTS_DIR / "post_confirmation.json")!r}))
assert app.post_confirmation(event, None) == event
print("stripe imported:", "stripe" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stripe imported: False"


def _seconds_between(earlier, later):
    from datetime import datetime

    def parse(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()


def test_the_pre_sign_up_trigger_never_imports_an_sdk():
    """It makes no AWS call: importing boto3 would be most of its cold start at
    a small memory size (make bench's memory sweep), inside Cognito's 5 s."""
    import subprocess
    import sys

    from tests.support import PROJECT_DIR

    script = """
import sys
import app
event = {"triggerSource": "PreSignUp_SignUp", "request": {"userAttributes": {
    "email": "ada@example.com", "name": "Ada Ltd"}}, "response": {}}
assert app.pre_sign_up(event, None) == event
print("imported:", sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore", "stripe"}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported: []"


def test_a_refused_sign_up_is_one_log_line_of_the_local_lambda_runtime(stage, caplog):
    """The trigger's refusal is its answer, not a fault: no traceback in make run's output."""
    event = {"triggerSource": "PreSignUp_SignUp", "userName": "ada@example.com", "response": {},
             "request": {"userAttributes": {"email": "ada@example.com", "name": "Acme\u202e"}}}

    with caplog.at_level(logging.INFO, logger="local.lambda"):
        error, payload = stage.lambdas.invoke(
            stage.resources.function_names["pre_sign_up"], json.dumps(event).encode())

    assert (error, json.loads(payload)["errorType"]) == ("Unhandled", "SignUpRefused")
    [record] = [r for r in caplog.records if r.name == "local.lambda"]
    said = record.getMessage()
    assert said.endswith("pre_sign_up refused the sign-up: Company name must not contain "
                         "invisible, control or text-direction characters (U+202E)")
    assert "\n" not in said and record.exc_info is None and record.levelno == logging.INFO
