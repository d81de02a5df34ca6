"""The outcome mail: what each outcome says, escaped where it is HTML, sent in the
tenant's SES tenant, once per key, and without a sender not at all (one log line)."""
import logging
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from chalicelib import budget
from chalicelib.clock import parse_instant, plus_seconds, seconds_between
from chalicelib.errors import AwsServiceUnavailable, OutcomeMailInFlight
from chalicelib.outcome_mail import (
    CLOCK_SLACK_SECONDS,
    SENDING_LEASE_SECONDS,
    OutcomeMail,
    compose,
    lease_end,
)
from tests.unit.conftest import TENANT_ID, client_error

SIGNUP = "https://abc.execute-api.eu-west-1.amazonaws.com/api/signup"
NOW = "2026-12-03T11:00:00.000Z"
KEY = f"{TENANT_ID}:Tenant Onboarding Complete"
HOSTILE = '<img src=x onerror="alert(1)">&Co'


IDENTITY = "arn:aws:ses:eu-west-1:111122223333:identity/example.com"


class FakeSes:
    """SES v2's SendEmail: records each call; ``fail`` raises instead, once each.
    CreateTenantResourceAssociation answers ``associate`` (an error code) or
    nothing, and notes what the record's ``outcomeMail`` was then (``tenants``)."""

    def __init__(self, *fail: BaseException, associate: str | None = None,
                 tenants: Any = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.claims_when_associating: list[Any] = []
        self._fail = list(fail)
        self._associate = associate
        self._tenants = tenants

    def create_tenant_resource_association(self, **params: Any) -> dict[str, Any]:
        self.calls.append(f"associate {params['ResourceArn']} with {params['TenantName']}")
        if self._tenants is not None:
            self.claims_when_associating.append(
                self._tenants.require(TENANT_ID).get("outcomeMail"))
        if self._associate:
            raise client_error(self._associate, "CreateTenantResourceAssociation")
        return {}

    def send_email(self, **params: Any) -> dict[str, str]:
        if self._fail:
            raise self._fail.pop(0)
        self.sent.append(params)
        self.calls.append("send" + (f" in {params['TenantName']}" if "TenantName" in params else ""))
        return {"MessageId": f"m-{len(self.sent)}"}


@pytest.fixture
def record(tenants, new_tenant) -> dict[str, Any]:
    tenants.create(new_tenant, NOW)
    tenants.finish(TENANT_ID, "active", NOW)
    return tenants.require(TENANT_ID)


def mailer(tenants, ses: Any, sender: str | None = "onboarding@example.com") -> OutcomeMail:
    return OutcomeMail(ses, ses, tenants, sender, SIGNUP, IDENTITY if sender else None)


def unavailable(cause: BaseException) -> AwsServiceUnavailable:
    """What errors.aws_call makes of a network error."""
    error = AwsServiceUnavailable("SES is unavailable", "SES")
    error.__cause__ = cause
    return error


LATER = plus_seconds(NOW, SENDING_LEASE_SECONDS)


def with_ses_tenant(tenants) -> dict[str, Any]:
    """The record, now naming its SES tenant."""
    tenants.set_contact_list(TENANT_ID, {"list": "l", "listMode": "subscriber-store",
                                         "sesTenant": "tenant-x"}, NOW)
    return tenants.require(TENANT_ID)


# --- what each outcome says ----------------------------------------------------------------
def test_approved_names_the_company_and_links_the_sign_up_page():
    mail = compose("active", "Acme Ltd", None, SIGNUP)

    assert mail.subject == "Your sign-up for Acme Ltd is approved"
    assert f"Sign in at {SIGNUP} with the email address and password you signed up with." in mail.text
    assert f'<a href="{SIGNUP}">{SIGNUP}</a>' in mail.html


def test_rejected_gives_the_admins_reason_and_says_sign_in_is_disabled():
    mail = compose("rejected", "Acme Ltd", "not a business we serve", SIGNUP)

    assert mail.subject == "Your sign-up for Acme Ltd was not approved"
    assert "its sign-in is disabled" in mail.text
    assert "The reason given: not a business we serve" in mail.text
    assert SIGNUP not in mail.text


def test_rejected_without_a_reason_says_none_was_given():
    assert "No reason was given." in compose("rejected", "Acme", None, SIGNUP).text


def test_timed_out_says_it_was_not_decided_and_no_new_sign_up_is_needed():
    mail = compose("timeout", "Acme Ltd", "no admin decision arrived", SIGNUP)

    assert mail.subject == "Your sign-up for Acme Ltd was not decided in time"
    assert "You do not need to sign up again." in mail.text


def test_failed_onboardings_are_not_mailed():
    with pytest.raises(ValueError):
        compose("failed", "Acme", "boom", SIGNUP)


def test_the_tenants_name_and_the_admins_reason_are_escaped_in_the_html_part():
    mail = compose("rejected", HOSTILE, "<script>alert(2)</script>", SIGNUP)

    assert "<img" not in mail.html and "<script" not in mail.html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;Co" in mail.html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in mail.html
    assert HOSTILE in mail.text  # the text part is the tenant's words, as they are


def test_a_name_with_line_breaks_stays_on_the_subject_line():
    assert "\n" not in compose("active", "Acme\r\nBcc: x@example.com", None, SIGNUP).subject


# --- sending ------------------------------------------------------------------------------------
def test_sent_from_the_stages_sender_to_the_tenant_in_its_ses_tenant(tenants, record):
    ses = FakeSes()

    record = with_ses_tenant(tenants)

    state = mailer(tenants, ses).tell(record, "active", None, KEY, NOW)

    assert state == "sent"
    [sent] = ses.sent
    assert sent["FromEmailAddress"] == "onboarding@example.com"
    assert sent["Destination"] == {"ToAddresses": [record["email"]]}
    assert sent["TenantName"] == "tenant-x"
    assert set(sent["Content"]["Simple"]["Body"]) == {"Text", "Html"}
    assert tenants.require(TENANT_ID)["outcomeMail"] == {
        "key": KEY, "state": "sent", "at": NOW, "messageId": "m-1"}


@pytest.mark.parametrize("answer", [None, "AlreadyExistsException"])
def test_the_senders_identity_is_associated_with_the_ses_tenant_before_sending_in_it(
        tenants, record, answer):
    ses = FakeSes(associate=answer)
    record = with_ses_tenant(tenants)

    mailer(tenants, ses).tell(record, "active", None, KEY, NOW)

    assert ses.calls == [f"associate {IDENTITY} with tenant-x", "send in tenant-x"]


def test_an_ses_tenant_gone_meanwhile_sends_the_mail_outside_it(tenants, record):
    ses = FakeSes(associate="NotFoundException")
    record = with_ses_tenant(tenants)

    assert mailer(tenants, ses).tell(record, "active", None, KEY, NOW) == "sent"
    assert ses.calls[-1] == "send"


def test_without_an_ses_tenant_on_the_record_no_tenant_name_is_given(tenants, record):
    ses = FakeSes()

    mailer(tenants, ses).tell(record, "active", None, KEY, NOW)

    assert "TenantName" not in ses.sent[0]


def test_told_again_under_the_same_key_nothing_is_sent_twice(tenants, record):
    ses = FakeSes()
    mail = mailer(tenants, ses)

    mail.tell(record, "active", None, KEY, NOW)
    again = mail.tell(tenants.require(TENANT_ID), "active", None, KEY, NOW)
    stale = mail.tell(record, "active", None, KEY, NOW)  # a retry holding the record from before

    assert (again, stale) == ("sent", "sent")
    assert len(ses.sent) == 1


def test_a_later_attempts_outcome_is_a_new_mail(tenants, record):
    ses = FakeSes()
    mail = mailer(tenants, ses)

    mail.tell(record, "active", None, KEY, NOW)
    mail.tell(tenants.require(TENANT_ID), "active", None, KEY + ":attempt-2", NOW)

    assert len(ses.sent) == 2


def test_a_refusal_is_recorded_and_not_retried(tenants, record, caplog):
    ses = FakeSes(client_error("MessageRejected", "SendEmail"))
    mail = mailer(tenants, ses)

    assert mail.tell(record, "active", None, KEY, NOW) == "refused"
    assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, NOW) == "refused"
    assert ses.sent == []
    assert tenants.require(TENANT_ID)["outcomeMail"]["reason"] == "MessageRejected"


@pytest.mark.parametrize("lost", [ReadTimeoutError(endpoint_url="https://email.example"),
                                  ConnectionClosedError(endpoint_url="https://email.example")],
                         ids=["read timeout", "connection closed"])
def test_an_answer_lost_after_ses_may_have_taken_the_message_is_unknown_and_never_sent_again(
        tenants, record, caplog, lost):
    ses = FakeSes(unavailable(lost))
    mail = mailer(tenants, ses)

    with caplog.at_level(logging.WARNING, logger="chalicelib.outcome_mail"):
        # not raised: nothing would send it again, and the outcome's event goes on
        assert mail.tell(record, "active", None, KEY, NOW) == "unknown"
    assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, NOW) == "unknown"

    assert ses.sent == []
    assert tenants.require(TENANT_ID)["outcomeMail"]["state"] == "unknown"
    assert "may have gone out" in caplog.text


@pytest.mark.parametrize("error, match", [
    (lambda: client_error("TooManyRequestsException", "SendEmail"), "TooManyRequestsException"),
    # SES not sending for now: retried like SES unavailable, not refused for good
    (lambda: client_error("SendingPausedException", "SendEmail"), "SendingPausedException"),
    (lambda: client_error("LimitExceededException", "SendEmail"), "LimitExceededException"),
    # SES not reached: the request never went out
    (lambda: unavailable(EndpointConnectionError(endpoint_url="https://email.example")), None),
    (lambda: unavailable(ConnectTimeoutError(endpoint_url="https://email.example")), None),
], ids=["throttled", "sending paused", "limit exceeded", "connection refused", "connect timeout"])
def test_a_send_that_can_succeed_later_gives_the_claim_back_and_the_retry_sends(
        tenants, record, error, match):
    ses = FakeSes(error())
    mail = mailer(tenants, ses)

    with pytest.raises(AwsServiceUnavailable, match=match):
        mail.tell(record, "active", None, KEY, NOW)
    assert "outcomeMail" not in tenants.require(TENANT_ID)

    assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, NOW) == "sent"
    assert len(ses.sent) == 1


@pytest.mark.parametrize("code", ["AccessDeniedException", "ValidationException"])
def test_an_error_no_retry_would_change_is_refused_and_logged_and_the_outcome_goes_on(
        tenants, record, caplog, code):
    ses = FakeSes(client_error(code, "SendEmail"))
    mail = mailer(tenants, ses)

    with caplog.at_level(logging.WARNING, logger="chalicelib.outcome_mail"):
        assert mail.tell(record, "active", None, KEY, NOW) == "refused"
    assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, NOW) == "refused"

    assert ses.sent == []
    assert tenants.require(TENANT_ID)["outcomeMail"]["reason"] == code
    lines = [r for r in caplog.records if r.name == "chalicelib.outcome_mail"
             and r.levelno >= logging.WARNING]
    assert lines and {r.levelno for r in lines} == {logging.ERROR}
    [line] = {r.getMessage() for r in lines}  # one line (caplog may see it twice)
    assert code in line and TENANT_ID in line
    assert f"fake {code}" not in line  # the code only, not SES's message


def test_an_association_no_retry_would_change_is_refused_and_nothing_is_sent(tenants, record):
    ses = FakeSes(associate="AccessDeniedException")
    record = with_ses_tenant(tenants)

    assert mailer(tenants, ses).tell(record, "active", None, KEY, NOW) == "refused"

    assert ses.sent == []
    assert tenants.require(TENANT_ID)["outcomeMail"]["reason"] == "AccessDeniedException"


def test_the_mail_is_claimed_only_once_associated_so_a_crash_before_leaves_nothing_unknown(
        tenants, record):
    ses = FakeSes(tenants=tenants)
    record = with_ses_tenant(tenants)

    mailer(tenants, ses).tell(record, "active", None, KEY, NOW)

    assert ses.claims_when_associating == [None]


def test_ses_unavailable_while_associating_leaves_nothing_claimed(tenants, record):
    ses = FakeSes(associate="TooManyRequestsException")
    record = with_ses_tenant(tenants)

    with pytest.raises(AwsServiceUnavailable):
        mailer(tenants, ses).tell(record, "active", None, KEY, NOW)

    assert "outcomeMail" not in tenants.require(TENANT_ID)
    assert ses.sent == []


def test_a_mail_another_attempt_is_sending_is_left_to_it_and_retried(tenants, record):
    ses = FakeSes()
    tenants.claim_outcome_mail(TENANT_ID, KEY, "sending", NOW)  # the other attempt, live
    mail = mailer(tenants, ses)

    just_before = plus_seconds(NOW, SENDING_LEASE_SECONDS - 1)
    with pytest.raises(OutcomeMailInFlight):
        mail.tell(tenants.require(TENANT_ID), "active", None, KEY, just_before)

    assert tenants.require(TENANT_ID)["outcomeMail"]["state"] == "sending"
    # its transient error can still give the mail back, and a retry sends it
    assert tenants.release_outcome_mail(TENANT_ID, KEY)
    assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, just_before) == "sent"
    assert len(ses.sent) == 1


def test_a_claim_older_than_any_attempt_died_while_sending_and_is_never_sent_again(
        tenants, record, caplog):
    ses = FakeSes()
    tenants.claim_outcome_mail(TENANT_ID, KEY, "sending", NOW)  # then the attempt died
    mail = mailer(tenants, ses)

    with caplog.at_level(logging.WARNING, logger="chalicelib.outcome_mail"):
        assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, LATER) == "unknown"

    assert ses.sent == []
    assert tenants.require(TENANT_ID)["outcomeMail"]["state"] == "unknown"
    assert "may have gone out" in caplog.text


class Context:
    """What a task's Lambda context says of the time left."""

    def __init__(self, seconds: float) -> None:
        self._ms = seconds * 1000

    def get_remaining_time_in_millis(self) -> float:
        return self._ms


def test_a_claim_lasts_as_long_as_the_invocation_that_made_it(tenants, record):
    # update_status_and_notify's 30 s: Lambda ends it by then, whatever it was doing
    with budget.invocation(Context(30)):
        until = parse_instant(lease_end(NOW))
    assert 30 <= seconds_between(NOW, until) <= 30 + CLOCK_SLACK_SECONDS
    # outside an invocation (a script, a test): the longest a sending function runs
    assert seconds_between(NOW, parse_instant(lease_end(NOW))) == SENDING_LEASE_SECONDS


def test_a_retry_after_the_claiming_attempt_ended_settles_the_mail_at_once(tenants, record):
    # An attempt claimed the mail, then died before it could give the claim back
    # (DynamoDB down as SES was): its retry comes seconds later, within the state
    # machine's retries, which end long before SENDING_LEASE_SECONDS.
    ses = FakeSes()
    with budget.invocation(Context(30)):
        tenants.claim_outcome_mail(TENANT_ID, KEY, "sending", NOW, until=lease_end(NOW))
    mail = mailer(tenants, ses)

    with pytest.raises(OutcomeMailInFlight):  # while the claimant may still be running
        mail.tell(tenants.require(TENANT_ID), "active", None, KEY, plus_seconds(NOW, 20))
    retried = plus_seconds(NOW, 30 + CLOCK_SLACK_SECONDS + 1)
    assert mail.tell(tenants.require(TENANT_ID), "active", None, KEY, retried) == "unknown"

    assert ses.sent == []  # it may have gone out: never twice
    assert tenants.require(TENANT_ID)["outcomeMail"]["state"] == "unknown"


def test_without_a_sender_nothing_is_sent_and_one_line_says_so(tenants, record, caplog):
    ses = FakeSes()
    mail = mailer(tenants, ses, sender=None)

    with caplog.at_level(logging.DEBUG, logger="chalicelib.outcome_mail"):
        assert mail.tell(record, "active", None, KEY, NOW) == "skipped"
        mail.tell(tenants.require(TENANT_ID), "active", None, KEY, NOW)  # a retry: silent

    assert ses.sent == []
    lines = [r for r in caplog.records if r.name == "chalicelib.outcome_mail"
             and r.levelno >= logging.INFO]
    assert [r.getMessage() for r in lines] == [
        "no SES sender on this stage (ses_sender): the active outcome is not mailed "
        f"[tenantId={TENANT_ID}]"]
