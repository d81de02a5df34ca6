"""The tenant's outcome mail, in real executions of statemachine.json: sent once
per outcome from the stage's sender (the local stage has one,
.chalice/config.json), however often its task is retried."""
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib import dependencies as deps
from scripts.local.ses import deliver_mail_to
from tests.support.faults import aws_error, fail_first, unreachable
from tests.support.stage import REGION, STAGE, Stage, app_client, finalize_body, tenant

SENDER = "onboarding@example.com"  # the local stage's ses_sender


@pytest.fixture
def outbox() -> Iterator[list[dict[str, Any]]]:
    """What SES sent while the test ran (scripts/local/ses.py hands it over)."""
    sent: list[dict[str, Any]] = []
    deliver_mail_to(sent.append)
    yield sent
    deliver_mail_to(None)


def app_session() -> Any:
    session = boto3.session.Session(region_name=REGION)
    deps.override("session", session)
    return session


def decide(stage: Stage, execution: str, status: str, reason: str | None = None) -> None:
    token = stage.wait_for_token(execution, seconds=30)
    with Client(stage.app, stage_name=STAGE) as client:
        response = client.http.post("/tenant/finalize", headers={"Content-Type": "application/json"},
                                    body=finalize_body(token, status, reason))
    assert response.status_code == 200, response.body


def decided_and_ended(stage: Stage, t: dict[str, str], status: str, reason: str | None = None,
                      seconds: float = 30) -> None:
    """The tenant's onboarding started, decided, and ended as it should: SUCCEEDED."""
    execution = stage.start(t)
    decide(stage, execution, status, reason)
    assert stage.wait_for_end(execution, seconds=seconds)["status"] == "SUCCEEDED"


def to(outbox: list[dict[str, Any]], email: str) -> list[dict[str, Any]]:
    return [message for message in outbox if message["to"] == email]


def test_an_approved_tenant_is_mailed_once_in_its_ses_tenant_with_the_sign_in_link(
        monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        t = tenant(40)
        decided_and_ended(stage, t, "approved")
        [mail] = to(outbox, t["email"])
        assert mail["from"] == SENDER
        assert mail["sesTenant"] == f"tenant-{t['tenantId']}"
        assert mail["subject"] == f"Your sign-up for {t['name']} is approved"
        assert "/signup" in mail["body"]
        record = stage.record(t["tenantId"])
        [event] = [e for e in stage.events() if e["detail-type"] == "Tenant Onboarding Complete"]
        assert record["outcomeMail"]["key"] == event["detail"]["eventKey"]
        assert record["outcomeMail"]["state"] == "sent"


def test_a_rejected_tenant_is_mailed_the_reason_outside_its_released_ses_tenant(
        monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        t = tenant(41)
        decided_and_ended(stage, t, "rejected", "we only onboard <b>charities</b>")
        [mail] = to(outbox, t["email"])
        assert mail["subject"] == f"Your sign-up for {t['name']} was not approved"
        assert "The reason given: we only onboard <b>charities</b>" in mail["body"]
        assert mail["sesTenant"] is None  # given back before the outcome: not sent in it


def test_a_publish_retried_after_the_mail_went_out_does_not_send_it_again(monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        session = app_session()
        # Approval Requested passes; the outcome's PutEvents fails once, after the mail went
        refused = fail_first(session, "before-call.events.PutEvents", 1, skip=1, answer={
            "status": 200, "parsed": {"FailedEntryCount": 1, "Entries": [
                {"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}]}})
        sends = fail_first(session, "before-call.sesv2.SendEmail", 0, answer={})
        t = tenant(42)
        decided_and_ended(stage, t, "approved", seconds=60)
        assert stage.lambdas.invocations[
            "tenant-onboarding-local-update_status_and_notify"] == 2  # the task was retried
        assert refused.calls == 3
        assert sends.calls == 1
        assert len(to(outbox, t["email"])) == 1
        assert [e["detail-type"] for e in stage.events()][-1] == "Tenant Onboarding Complete"


def test_ses_throttling_the_mail_is_retried_and_it_is_sent_once(monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        throttled = fail_first(app_session(), "before-call.sesv2.SendEmail", 2,
                               answer=aws_error("TooManyRequestsException", status=429))
        t = tenant(43)
        decided_and_ended(stage, t, "approved", seconds=60)
        assert throttled.calls == 3  # one SendEmail a task attempt: the state machine retries
        assert stage.lambdas.invocations["tenant-onboarding-local-update_status_and_notify"] == 3
        assert len(to(outbox, t["email"])) == 1
        assert stage.record(t["tenantId"])["outcomeMail"]["state"] == "sent"


def test_ses_refusing_the_address_is_recorded_and_the_outcome_still_goes_out(monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        refused = fail_first(app_session(), "before-call.sesv2.SendEmail", 1,
                             answer=aws_error("MessageRejected", "Email address is on the "
                                                                 "suppression list"))
        t = tenant(44)
        decided_and_ended(stage, t, "approved", seconds=60)
        assert refused.calls == 1  # not retried: SES will refuse it again
        assert to(outbox, t["email"]) == []
        mail = stage.record(t["tenantId"])["outcomeMail"]
        assert (mail["state"], mail["reason"]) == ("refused", "MessageRejected")
        assert [e["detail-type"] for e in stage.events()][-1] == "Tenant Onboarding Complete"


def test_an_error_no_retry_would_change_is_recorded_and_the_outcome_still_goes_out(
        monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        denied = fail_first(app_session(), "before-call.sesv2.SendEmail", 1000,
                            answer=aws_error("AccessDeniedException", "not authorized", 403))
        t = tenant(46)
        decided_and_ended(stage, t, "approved", seconds=60)
        assert denied.calls == 1
        mail = stage.record(t["tenantId"])["outcomeMail"]
        assert (mail["state"], mail["reason"]) == ("refused", "AccessDeniedException")
        assert stage.kinds(t["tenantId"])[-1] == "Tenant Onboarding Complete"


def test_an_answer_ses_lost_is_never_sent_again_and_the_outcome_still_goes_out(
        monkeypatch, outbox):
    with Stage(monkeypatch) as stage:
        app_session()
        # SES may have taken it: neither botocore nor the state machine sends it again
        lost = unreachable(app_client(deps.SEND_MAIL), "sesv2.SendEmail", 1000, "read timeout")
        t = tenant(47)
        decided_and_ended(stage, t, "approved", seconds=60)
        assert lost.sends == 1
        assert stage.record(t["tenantId"])["outcomeMail"]["state"] == "unknown"
        assert stage.kinds(t["tenantId"])[-1] == "Tenant Onboarding Complete"


def test_a_mail_ses_never_took_is_sent_once_by_the_reconciler_with_its_event(monkeypatch, outbox):
    from scripts.local.lambdas import scheduled_event

    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    with Stage(monkeypatch) as stage:
        # SES is down past every retry of the outcome task and of its failure path
        down = fail_first(app_session(), "before-call.sesv2.SendEmail", 1000,
                          answer=aws_error("ServiceUnavailable", "down", 503))
        t = tenant(45)
        execution = stage.start(t)
        decide(stage, execution, "approved")
        stage.wait_for_end(execution, seconds=90)
        record = stage.record(t["tenantId"])
        assert (record["status"], record["outcomeDue"]) == ("active", "active")
        assert "outcomeMail" not in record  # no claim left behind: SES took nothing
        assert to(outbox, t["email"]) == []
        down.remaining = 0  # SES is back

        stage.lambdas.invoke_json("reconcile", scheduled_event())
        stage.lambdas.invoke_json("reconcile", scheduled_event())

        assert len(to(outbox, t["email"])) == 1
        assert stage.kinds(t["tenantId"])[-1] == "Tenant Onboarding Complete"
        assert stage.record(t["tenantId"])["outcomeMail"]["state"] == "sent"
