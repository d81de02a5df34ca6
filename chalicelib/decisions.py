"""The admin's decision: validating ``POST /tenant/finalize`` and delivering it.

All validation of the request body happens here, so every bad input gets the
same kind of clear 4xx answer.
"""
import json
from dataclasses import dataclass
from typing import Any

from chalice import BadRequestError, ConflictError, NotFoundError

from chalicelib.errors import DecisionNotDelivered
from chalicelib.http_errors import PayloadTooLargeError
from chalicelib.signup import unsafe_text
from chalicelib.tenants import MAX_REASON_LENGTH
from chalicelib.workflow import OnboardingWorkflow

MAX_BODY_BYTES = 16 * 1024
MAX_TOKEN_LENGTH = 2048  # Step Functions' own limit for a task token
DECISIONS = ("approved", "rejected")
FIELDS = {"taskToken", "status", "reason"}


@dataclass(frozen=True)
class Decision:
    task_token: str
    status: str
    reason: str | None

    def callback_output(self, decided_at: str, decided_by: str | None) -> dict[str, Any]:
        """What the waiting execution receives as the task's result."""
        return {
            "status": self.status,
            "reason": self.reason,
            "decidedAt": decided_at,
            "decidedBy": decided_by,
        }


LOCAL_CALLER = "local"


def claims_of(request_context: dict[str, Any]) -> dict[str, Any]:
    """The claims of the Cognito ID token API Gateway checked for this request."""
    return ((request_context or {}).get("authorizer") or {}).get("claims") or {}


def caller_of(request_context: dict[str, Any]) -> str:
    """Who acts: the admin's email from the ID token, or "local" where nothing
    checks tokens (chalice.test)."""
    return claims_of(request_context).get("email") or LOCAL_CALLER


def read_json_object(raw_body: bytes | str | None, fields: set[str], usage: str) -> dict[str, Any]:
    """The request body as a JSON object with only the given fields, or a 4xx."""
    if not raw_body:
        raise BadRequestError(f"request body is required: {usage}")
    if len(raw_body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: pathologically nested JSON, well under the size limit
        raise BadRequestError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise BadRequestError(f"unknown field(s): {', '.join(unknown)}")
    return body


def read_status_and_reason(body: dict[str, Any]) -> tuple[str, str | None]:
    status = body.get("status")
    if status not in DECISIONS:
        raise BadRequestError('status must be "approved" or "rejected"')
    return status, read_reason(body.get("reason"))


def read_reason(reason: Any) -> str | None:
    """An admin's reason (a decision's, an offboarding's), trimmed; None when
    absent or blank; a 400 with the sentence when no one should read it as is.

    The tenant reads a rejection's reason, and admins read every reason in a
    tenant's history: it gets the company name's check (signup.unsafe_text),
    but for line breaks, which the console's reason field may hold."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise BadRequestError("reason must be a string")
    if len(reason) > MAX_REASON_LENGTH:
        raise BadRequestError(f"reason is longer than {MAX_REASON_LENGTH} characters")
    reason = reason.strip()
    refused = unsafe_text("reason", reason.replace("\n", " "))
    if refused:
        raise BadRequestError(refused)
    return reason or None


def parse_finalize_body(raw_body: bytes | str | None) -> Decision:
    body = read_json_object(raw_body, FIELDS, "a JSON object with taskToken and status")
    token = body.get("taskToken")
    if not isinstance(token, str) or not token.strip():
        raise BadRequestError("taskToken is required and must be a non-empty string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise BadRequestError(f"taskToken is longer than {MAX_TOKEN_LENGTH} characters")
    status, reason = read_status_and_reason(body)
    return Decision(task_token=token, status=status, reason=reason)


def finalize(
    decision: Decision,
    workflow: OnboardingWorkflow,
    decided_at: str,
    decided_by: str | None,
) -> dict[str, str]:
    """Resume the waiting execution with the decision; map refusals to 4xx."""
    try:
        workflow.send_decision(
            decision.task_token, decision.callback_output(decided_at, decided_by)
        )
    except DecisionNotDelivered as refused:
        if refused.reason == "invalid_token":
            raise BadRequestError(str(refused)) from None
        if refused.reason == "unknown_task":
            raise NotFoundError(str(refused)) from None
        raise ConflictError(str(refused)) from None
    return {
        "message": f"Tenant onboarding {decision.status} successfully",
        "status": decision.status,
    }
