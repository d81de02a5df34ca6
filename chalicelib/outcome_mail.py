"""The tenant told its onboarding's outcome by email: approved, rejected, timed out.

Sent through SES v2 from the stage's sender (``ses_sender`` in
.chalice/config.json, which template.json hands the sending functions as
SES_SENDER_ADDRESS and SES_SENDER_IDENTITY_ARN), in the tenant's SES tenant
while its record names one: SES sends in a tenant only through resources
associated with it, so the sender's identity is associated with it first
(once; already associated counts).
A stage without a sender mails nothing, and says so in one log line.

Sent at most once per outcome, keyed as the outcome's event is
(``outcomes.outcome_key``): the record's ``outcomeMail`` holds the key and
what became of it, and is claimed with a conditional write before SES is
asked, so a retried task, or the reconciler, finds the mail sent and sends
nothing. SES refusing for good (a suppressed or invalid address, a paused
account) is recorded and logged, and does not hold up the outcome; SES being
unavailable is raised to be retried like every task. Only an attempt that
died while SES had the message leaves it unknown whether it went out: it is
then not sent again, and logged as such.

The tenant's company name and the admin's reason are the tenant's and the
admin's words: plain text in the text part, escaped in the HTML part.
"""
import html
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.errors import AwsServiceUnavailable, aws_call, aws_error_code
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

    from chalicelib.tenants import TenantRepository

logger = get_logger(__name__)

MAILED = ("active", "rejected", "timeout")  # a failed onboarding is the admins' to retry
# What ``outcomeMail.state`` says became of the mail.
SENDING, SENT, REFUSED, SKIPPED, UNKNOWN = "sending", "sent", "refused", "skipped", "unknown"
# SES refused this message for good: sending it again will not help.
REFUSALS = frozenset({
    "MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException",
    "SendingPausedException", "BadRequestException", "NotFoundException",
    "LimitExceededException",
})


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
    def __init__(self, sesv2_client: "SESV2Client | None", tenants: "TenantRepository",
                 sender: str | None, signup_url: str | None,
                 sender_identity_arn: str | None = None) -> None:
        """``sesv2_client`` may be None only without a ``sender``."""
        self._ses = sesv2_client
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
            state = SKIPPED if not self._sender else SENDING
            claimed = self._tenants.claim_outcome_mail(tenant_id, key, state, now)
            if claimed is not None:
                if state == SKIPPED:
                    logger.info("no SES sender on this stage (ses_sender): the %s outcome is "
                                "not mailed", status, extra={"tenantId": tenant_id})
                    return SKIPPED
                return self._send(claimed, status, reason, key, now)
            earlier = self._tenants.require(tenant_id).get("outcomeMail") or {}
        return self._already(tenant_id, earlier, key, now)

    def _already(self, tenant_id: str, earlier: dict[str, Any], key: str, now: str) -> str:
        state = str(earlier.get("state"))
        if state == SENDING:
            # an attempt died while SES had the message: it may have gone out
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
              now: str) -> str:
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
        if self._ses is None:
            raise RuntimeError("an SES sender without an SES client")
        ses_tenant = record.get("sesTenant")  # gone once released (rejected, timed out)
        if ses_tenant and self._in_ses_tenant(str(ses_tenant), tenant_id, key):
            params["TenantName"] = str(ses_tenant)
        try:
            with aws_call("SES"):
                answer = self._ses.send_email(**params)
        except AwsServiceUnavailable as unavailable:
            if not _maybe_sent(unavailable.__cause__):
                self._tenants.release_outcome_mail(tenant_id, key)
            raise
        except Exception as error:
            code = aws_error_code(error)
            if code not in REFUSALS:
                self._tenants.release_outcome_mail(tenant_id, key)
                raise
            self._tenants.settle_outcome_mail(tenant_id, key, REFUSED, now, {"reason": code})
            logger.warning("SES refused the %s outcome mail (%s); not sending it again", status,
                           code, extra={"tenantId": tenant_id})
            return REFUSED
        self._tenants.settle_outcome_mail(tenant_id, key, SENT, now,
                                          {"messageId": str(answer.get("MessageId", ""))})
        logger.info("mailed the tenant its %s outcome", status, extra={"tenantId": tenant_id})
        return SENT


    def _in_ses_tenant(self, ses_tenant: str, tenant_id: str, key: str) -> bool:
        """The sender's identity associated with ``ses_tenant``; False when that
        SES tenant is gone (the mail then goes out of any SES tenant)."""
        if self._ses is None or not self._identity:  # the template sets both with a sender
            return True
        try:
            with aws_call("SES"):
                self._ses.create_tenant_resource_association(
                    TenantName=ses_tenant, ResourceArn=self._identity)
        except Exception as error:
            code = aws_error_code(error)
            if code == "AlreadyExistsException":
                return True
            if code == "NotFoundException":
                logger.info("SES tenant %s is gone: the outcome mail goes out of it", ses_tenant,
                            extra={"tenantId": tenant_id})
                return False
            self._tenants.release_outcome_mail(tenant_id, key)  # nothing was sent
            raise
        return True


def _maybe_sent(error: BaseException | None) -> bool:
    """SES may have taken the message: the answer, not the request, was lost."""
    from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

    return isinstance(error, (ReadTimeoutError, ConnectionClosedError))
