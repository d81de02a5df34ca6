"""The tenant told its onboarding's outcome by email: approved, rejected, timed out.

Sent through SES v2 from the stage's sender (``ses_sender`` in
.chalice/config.json, which template.json hands the sending functions as
SES_SENDER_ADDRESS and SES_SENDER_IDENTITY_ARN), in the tenant's SES tenant
while its record names one: SES sends in a tenant only through resources
associated with it, so the sender's identity is associated with it first
(once; already associated counts).
A stage without a sender mails nothing, and says so in one log line.

Sent at most once per outcome, keyed as the outcome's event is
(``outcomes.outcome_key``): the record's ``outcomeMail`` holds the key, what
became of it and when, and is claimed (``sending``) with a conditional write
just before SES is asked to send, after the association, so a retried task,
or the reconciler, finds the mail sent and sends nothing. SendEmail is made
in one attempt (dependencies.SEND_MAIL): SES has no idempotency key, so only
this module decides whether to send again.
- SES unavailable (throttled, failing, not reached, out of the invocation's
  time) before it had the message, or not sending for now (a paused account,
  a quota reached): the claim is given back and the error raised, to be
  retried like every task; the reconciler sends what is still due. The
  outcome event waits for it.
- SES may have had the message but its answer was lost (a read timeout, a
  closed connection), or an attempt died while sending (its claim outlived
  its invocation's end, which the claim records, or for a claim that does not
  say, the longest a sending function runs, SENDING_LEASE_SECONDS):
  ``unknown``, logged, and never sent again.
- Another attempt sending it right now: OutcomeMailInFlight, retried.
- Any other error (SES refusing the address, or a missing grant, a bad
  parameter): ``refused`` with the error's code, logged, never sent again,
  and the outcome goes on.

The tenant's company name and the admin's reason are the tenant's and the
admin's words: plain text in the text part, escaped in the HTML part.
"""
import html
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import budget
from chalicelib.clock import parse_instant, plus_seconds, seconds_between
from chalicelib.errors import (
    AwsServiceUnavailable,
    OutcomeMailInFlight,
    aws_call,
    aws_error_code,
    is_network_error,
)
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

    from chalicelib.tenants import TenantRepository

logger = get_logger(__name__)

MAILED = ("active", "rejected", "timeout")  # a failed onboarding is the admins' to retry
# What ``outcomeMail.state`` says became of the mail.
SENDING, SENT, REFUSED, SKIPPED, UNKNOWN = "sending", "sent", "refused", "skipped", "unknown"
# SES refused this message for good: sending it again will not help (a warning;
# any other error that is not transient is refused too, logged as an error).
REFUSALS = frozenset({
    "MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException",
    "BadRequestException", "NotFoundException",
})
# SES is not sending for now (the account's sending paused, a sending quota
# reached): the mail is sent later, as when SES is unavailable.
PAUSES = frozenset({"SendingPausedException", "LimitExceededException"})
# How long a claim to be sending may be another attempt's, still sending: the
# longest a function that sends runs (reconcile's timeout, .chalice/config.json;
# tests/unit/test_limits.py checks). An older one died while sending.
SENDING_LEASE_SECONDS = 300
# Lambdas' clocks may differ by this much: a claim's ``until`` is kept that much longer.
CLOCK_SLACK_SECONDS = 5.0


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


def compose(status: str, company: str, reason: str | None, signup_url: str | None) -> Mail:
    """The mail for an outcome (``status`` one of MAILED)."""
    company = " ".join(company.split())  # one line, whatever the record holds
    quoted = f"\u201c{company}\u201d"
    if status == "active":
        subject = f"Your sign-up for {company} is approved"
        lines = [f"Your sign-up for {quoted} was approved: your tenant is active."]
        where = signup_url or "the sign-up page"
        lines.append(f"Sign in at {where} with the email address and password you signed up with.")
        link = signup_url
    elif status == "rejected":
        subject = f"Your sign-up for {company} was not approved"
        lines = [f"Your sign-up for {quoted} was not approved, and its sign-in is disabled."]
        lines.append(f"The reason given: {reason}" if reason else "No reason was given.")
        link = None
    elif status == "timeout":
        subject = f"Your sign-up for {company} was not decided in time"
        lines = [f"No administrator decided on your sign-up for {quoted} within the time "
                 "allowed, so it was not completed.",
                 "An administrator can still start it again; you would then be told its "
                 "outcome by email. You do not need to sign up again."]
        link = None
    else:
        raise ValueError(f"no outcome mail for status {status!r}")
    text = "Hello,\n\n" + "\n\n".join(lines) + "\n"
    paragraphs = [html.escape(line) for line in lines]
    if link:
        href = html.escape(link, quote=True)
        paragraphs[-1] = paragraphs[-1].replace(html.escape(link), f'<a href="{href}">{href}</a>', 1)
    body = "<p>Hello,</p>\n" + "\n".join(f"<p>{p}</p>" for p in paragraphs) + "\n"
    return Mail(subject, text, body)


class OutcomeMail:
    def __init__(self, sesv2_client: "SESV2Client | None", sending_client: "SESV2Client | None",
                 tenants: "TenantRepository", sender: str | None, signup_url: str | None,
                 sender_identity_arn: str | None = None) -> None:
        """``sending_client`` makes SendEmail, in one attempt (dependencies.SEND_MAIL);
        ``sesv2_client`` the association. Both may be None only without a ``sender``."""
        self._ses = sesv2_client
        self._sending = sending_client
        self._tenants = tenants
        self._sender = sender
        self._signup_url = signup_url
        self._identity = sender_identity_arn

    def tell(self, record: dict[str, Any], status: str, reason: str | None, key: str,
             now: str) -> str:
        """Mail the tenant of ``record`` its outcome ``status``, once for ``key``;
        what became of it (``outcomeMail.state``)."""
        tenant_id = str(record["pk"])
        earlier = record.get("outcomeMail") or {}
        if earlier.get("key") != key:
            if not self._sender:
                if self._tenants.claim_outcome_mail(tenant_id, key, SKIPPED, now) is not None:
                    logger.info("no SES sender on this stage (ses_sender): the %s outcome is "
                                "not mailed", status, extra={"tenantId": tenant_id})
                    return SKIPPED
            else:
                # Before the claim: nothing has gone to SES until the claim says sending.
                # SES unavailable is raised here, with nothing claimed.
                refusal: Exception | None = None
                try:
                    ses_tenant = self._ses_tenant(record, tenant_id)
                except AwsServiceUnavailable:
                    raise
                except Exception as error:  # for good: refused once claimed, below
                    ses_tenant, refusal = None, error
                claimed = self._tenants.claim_outcome_mail(tenant_id, key, SENDING, now,
                                                           until=lease_end(now))
                if claimed is not None:
                    if refusal is not None:
                        return self._refused(tenant_id, key, status, refusal, now)
                    return self._send(claimed, status, reason, key, now, ses_tenant)
            earlier = self._tenants.require(tenant_id).get("outcomeMail") or {}
        return self._already(tenant_id, earlier, key, now)

    def _already(self, tenant_id: str, earlier: dict[str, Any], key: str, now: str) -> str:
        state = str(earlier.get("state"))
        if state == SENDING:
            if not _outlived(earlier, now):
                raise OutcomeMailInFlight(
                    f"the outcome mail of tenant {tenant_id} is being sent by another attempt; "
                    "will retry")
            # the attempt that claimed it died while SES had the message: it may have gone out
            self._tenants.settle_outcome_mail(tenant_id, key, UNKNOWN, now)
            logger.warning("an earlier attempt stopped while sending the outcome mail; it may "
                           "have gone out, so it is not sent again", extra={"tenantId": tenant_id})
            return UNKNOWN
        # a stage without a sender said so once, when the outcome was first told
        level = logging.DEBUG if state == SKIPPED else logging.INFO
        logger.log(level, "the outcome mail was already handled (%s); not sending it again",
                   state, extra={"tenantId": tenant_id})
        return state

    def _send(self, record: dict[str, Any], status: str, reason: str | None, key: str,
              now: str, ses_tenant: str | None) -> str:
        tenant_id = str(record["pk"])
        mail = compose(status, str(record.get("name", "")), reason, self._signup_url)
        params: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [str(record["email"])]},
            "Content": {"Simple": {
                "Subject": {"Data": mail.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": mail.text, "Charset": "UTF-8"},
                         "Html": {"Data": mail.html, "Charset": "UTF-8"}},
            }},
        }
        if ses_tenant:
            params["TenantName"] = ses_tenant
        if self._sending is None:
            raise RuntimeError("an SES sender without an SES client")
        try:
            with aws_call("SES"):
                answer = self._sending.send_email(**params)
        except AwsServiceUnavailable as unavailable:
            lost = unavailable.__cause__
            if lost is not None and _maybe_sent(lost):
                self._tenants.settle_outcome_mail(tenant_id, key, UNKNOWN, now,
                                                  {"reason": type(lost).__name__})
                logger.warning("SES's answer to the %s outcome mail was lost (%s); it may have "
                               "gone out, so it is not sent again", status, type(lost).__name__,
                               extra={"tenantId": tenant_id})
                return UNKNOWN
            self._tenants.release_outcome_mail(tenant_id, key)  # SES did not take it
            raise
        except Exception as error:
            code = aws_error_code(error)
            if code in PAUSES:
                self._tenants.release_outcome_mail(tenant_id, key)
                raise AwsServiceUnavailable(f"SES is not sending for now ({code}); will retry",
                                            service="SES") from error
            return self._refused(tenant_id, key, status, error, now)
        self._tenants.settle_outcome_mail(tenant_id, key, SENT, now,
                                          {"messageId": str(answer.get("MessageId", ""))})
        logger.info("mailed the tenant its %s outcome", status, extra={"tenantId": tenant_id})
        return SENT

    def _refused(self, tenant_id: str, key: str, status: str, error: Exception,
                 now: str) -> str:
        """Not sent, and no retry would change that: recorded with the error's code
        (only the code is logged: SES's message may name the tenant's address)."""
        code = aws_error_code(error) or type(error).__name__
        self._tenants.settle_outcome_mail(tenant_id, key, REFUSED, now, {"reason": code})
        if code in REFUSALS:
            logger.warning("SES refused the %s outcome mail (%s); not sending it again", status,
                           code, extra={"tenantId": tenant_id})
        else:
            logger.error("the %s outcome mail failed with %s, which a retry would not change "
                         "(a missing grant? a bug?); recorded as refused, not sent again, and "
                         "the outcome goes on", status, code, extra={"tenantId": tenant_id})
        return REFUSED

    def _ses_tenant(self, record: dict[str, Any], tenant_id: str) -> str | None:
        """The SES tenant to send in, with the sender's identity associated with
        it; None without one (gone once released: rejected, timed out) or when it
        is gone meanwhile (the mail then goes out of any SES tenant)."""
        ses_tenant = record.get("sesTenant")
        if not ses_tenant:
            return None
        if self._ses is None or not self._identity:  # the template sets both with a sender
            return str(ses_tenant)
        try:
            with aws_call("SES"):
                self._ses.create_tenant_resource_association(
                    TenantName=str(ses_tenant), ResourceArn=self._identity)
        except Exception as error:
            code = aws_error_code(error)
            if code == "AlreadyExistsException":
                return str(ses_tenant)
            if code == "NotFoundException":
                logger.info("SES tenant %s is gone: the outcome mail goes out of it", ses_tenant,
                            extra={"tenantId": tenant_id})
                return None
            raise
        return str(ses_tenant)


def _maybe_sent(error: BaseException) -> bool:
    """SES may have taken the message: a network error after the request may
    have gone (a read timeout, a closed connection...), not one in connecting."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        ProxyConnectionError,
    )

    never_sent = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
    return is_network_error(error) and not isinstance(error, never_sent)


def lease_end(now: str) -> str:
    """When the invocation under way is over, whatever it is doing: Lambda's
    deadline (its budget and the margin), and a little for clocks that differ;
    outside an invocation, the longest any sending function runs."""
    invocation = budget.current()
    if invocation is None:
        return plus_seconds(now, SENDING_LEASE_SECONDS)
    return plus_seconds(now, invocation.remaining() + budget.MARGIN_SECONDS + CLOCK_SLACK_SECONDS)


def _outlived(claim: dict[str, Any], now: str) -> bool:
    """The claim is held by no attempt that could still be running: its claimant's
    invocation is over (``until``), or, for a claim that does not say, it is older
    than the longest a sending function runs (a claim without a readable time is
    taken as old). A task retried after its attempt died while sending then
    settles the mail at once, not after SENDING_LEASE_SECONDS, which outlasts the
    state machine's retries."""
    try:
        if claim.get("until"):
            return parse_instant(now) >= parse_instant(str(claim["until"]))
        return seconds_between(str(claim.get("at")), parse_instant(now)) >= SENDING_LEASE_SECONDS
    except ValueError:
        return True
