import json

import pytest
from chalice import BadRequestError, ConflictError, NotFoundError

from chalicelib.decisions import (
    MAX_BODY_BYTES,
    Decision,
    PayloadTooLargeError,
    finalize,
    parse_finalize_body,
)
from chalicelib.workflow import DecisionNotDelivered

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token"
DECIDED_AT = "2026-11-26T14:00:00.000Z"
ADMIN = "arn:aws:iam::123456789012:user/admin"


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


# --- parse_finalize_body: valid bodies ----------------------------------------
def test_given_an_approval_when_parsed_then_decision_has_token_and_status():
    assert parse_finalize_body(body(taskToken=TOKEN, status="approved")) == Decision(
        task_token=TOKEN, status="approved", reason=None
    )


def test_given_a_rejection_with_reason_when_parsed_then_the_reason_is_trimmed():
    decision = parse_finalize_body(
        body(taskToken=TOKEN, status="rejected", reason="  incomplete company details \n")
    )

    assert (decision.status, decision.reason) == ("rejected", "incomplete company details")


def test_given_a_reason_of_only_spaces_when_parsed_then_reason_is_none():
    assert parse_finalize_body(body(taskToken=TOKEN, status="rejected", reason="   ")).reason is None


def test_given_a_null_reason_when_parsed_then_reason_is_none():
    assert parse_finalize_body(body(taskToken=TOKEN, status="approved", reason=None)).reason is None


def test_given_a_token_of_exactly_2048_chars_when_parsed_then_it_is_accepted():
    token = "t" * 2048

    assert parse_finalize_body(body(taskToken=token, status="approved")).task_token == token


def test_given_a_reason_of_exactly_1000_chars_when_parsed_then_it_is_accepted():
    reason = "r" * 1000

    assert parse_finalize_body(body(taskToken=TOKEN, status="rejected", reason=reason)).reason == reason


# --- parse_finalize_body: bad bodies ------------------------------------------
BAD_REQUESTS = {
    "no body": None,
    "empty body": b"",
    "not JSON": b"taskToken=abc&status=approved",
    "truncated JSON": b'{"taskToken": "abc",',
    "invalid UTF-8": b'{"taskToken": "\xff\xfe", "status": "approved"}',
    "JSON array": b'[{"taskToken": "abc", "status": "approved"}]',
    "JSON string": b'"approved"',
    "JSON null": b"null",
    "missing taskToken": body(status="approved"),
    "empty taskToken": body(taskToken="", status="approved"),
    "blank taskToken": body(taskToken="   ", status="approved"),
    "numeric taskToken": body(taskToken=123, status="approved"),
    "taskToken over 2048 chars": body(taskToken="t" * 2049, status="approved"),
    "missing status": body(taskToken=TOKEN),
    "unknown status": body(taskToken=TOKEN, status="maybe"),
    "status in other case": body(taskToken=TOKEN, status="APPROVED"),
    "status as list": body(taskToken=TOKEN, status=["approved"]),
    "non-string reason": body(taskToken=TOKEN, status="rejected", reason=42),
    "reason over 1000 chars": body(taskToken=TOKEN, status="rejected", reason="r" * 1001),
    "reason with a zero-width space": body(taskToken=TOKEN, status="rejected", reason="spam\u200b"),
    "reason reversed by an override": body(taskToken=TOKEN, status="rejected", reason="\u202edesiver"),
    "unknown field": body(taskToken=TOKEN, status="approved", tenantId="t-1"),
}


@pytest.mark.parametrize("raw", list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS))
def test_given_a_bad_body_when_parsed_then_bad_request(raw):
    with pytest.raises(BadRequestError):
        parse_finalize_body(raw)


def test_given_an_unknown_field_when_parsed_then_the_message_names_it():
    with pytest.raises(BadRequestError, match="tenantId"):
        parse_finalize_body(body(taskToken=TOKEN, status="approved", tenantId="t-1"))


def test_given_a_body_over_16_kib_when_parsed_then_payload_too_large_413():
    raw = body(taskToken=TOKEN, status="approved", reason="r" * MAX_BODY_BYTES)

    with pytest.raises(PayloadTooLargeError) as raised:
        parse_finalize_body(raw)
    assert raised.value.STATUS_CODE == 413
    assert PayloadTooLargeError.STATUS_CODE == 413


def test_given_a_body_of_exactly_16_kib_when_parsed_then_it_is_not_too_large():
    prefix = body(taskToken=TOKEN, status="approved")[:-1] + b', "reason": "'
    raw = prefix + b"r" * (MAX_BODY_BYTES - len(prefix) - 2) + b'"}'
    assert len(raw) == MAX_BODY_BYTES

    # Under the size limit, so the reason's own length rule decides.
    with pytest.raises(BadRequestError) as raised:
        parse_finalize_body(raw)
    assert not isinstance(raised.value, PayloadTooLargeError)


def test_given_deeply_nested_json_under_the_size_limit_when_parsed_then_bad_request():
    raw = b"[" * 8000 + b"]" * 8000  # 16,000 bytes: under the 16 KiB limit
    assert len(raw) <= MAX_BODY_BYTES

    with pytest.raises(BadRequestError):
        parse_finalize_body(raw)


# --- finalize -----------------------------------------------------------------
class FakeWorkflow:
    def __init__(self, error: Exception = None) -> None:
        self.error = error
        self.sent = []

    def send_decision(self, task_token, decision):
        self.sent.append((task_token, decision))
        if self.error is not None:
            raise self.error


def test_given_an_approval_when_finalized_then_the_exact_success_body_is_returned():
    result = finalize(Decision(TOKEN, "approved", None), FakeWorkflow(), DECIDED_AT, ADMIN)

    assert result == {"message": "Tenant onboarding approved successfully", "status": "approved"}


def test_given_a_rejection_when_finalized_then_the_exact_success_body_is_returned():
    result = finalize(Decision(TOKEN, "rejected", "no"), FakeWorkflow(), DECIDED_AT, ADMIN)

    assert result == {"message": "Tenant onboarding rejected successfully", "status": "rejected"}


def test_given_a_rejection_when_finalized_then_the_workflow_gets_the_full_decision():
    workflow = FakeWorkflow()

    finalize(Decision(TOKEN, "rejected", "incomplete"), workflow, DECIDED_AT, ADMIN)

    assert workflow.sent == [
        (
            TOKEN,
            {"status": "rejected", "reason": "incomplete", "decidedAt": DECIDED_AT, "decidedBy": ADMIN},
        )
    ]


@pytest.mark.parametrize(
    "reason, error_class, status_code",
    [
        ("invalid_token", BadRequestError, 400),
        ("unknown_task", NotFoundError, 404),
        ("not_waiting", ConflictError, 409),
    ],
)
def test_given_the_decision_is_refused_when_finalized_then_the_matching_4xx(
    reason, error_class, status_code
):
    workflow = FakeWorkflow(DecisionNotDelivered(reason, f"refused: {reason}"))

    with pytest.raises(error_class, match=f"refused: {reason}") as raised:
        finalize(Decision(TOKEN, "approved", None), workflow, DECIDED_AT, ADMIN)
    assert raised.value.STATUS_CODE == status_code


def test_given_an_outage_when_a_route_runs_then_503_with_retry_after():
    import json

    from botocore.exceptions import ReadTimeoutError

    from chalicelib.errors import aws_call
    from chalicelib.http_errors import answers

    @answers
    def route(tenant_id):
        with aws_call("DynamoDB"):
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    response = route(tenant_id="t1")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert json.loads(json.dumps(response.body)) == {
        "Code": "ServiceUnavailableError",
        "Message": "DynamoDB is unavailable right now; try again in 5 seconds",
    }


def test_given_stripe_down_when_a_route_runs_then_503_naming_stripe():
    from chalicelib.errors import StripeUnavailable
    from chalicelib.http_errors import answers

    @answers
    def route():
        raise StripeUnavailable("Stripe is unavailable (APIConnectionError); will retry")

    response = route()
    assert response.status_code == 503 and response.body["Message"].startswith("Stripe is")


def test_given_a_view_error_when_a_route_runs_then_it_passes_through_unchanged():
    from chalicelib.http_errors import answers

    @answers
    def route():
        raise ConflictError("not awaiting a decision")

    with pytest.raises(ConflictError):
        route()


def test_given_a_reason_with_invisible_characters_when_parsed_then_400_names_them():
    with pytest.raises(BadRequestError, match=r"^reason must not contain invisible, control or "
                                              r"text-direction characters \(U\+2060, U\+E0041\)$"):
        parse_finalize_body(body(taskToken=TOKEN, status="rejected", reason="no\u2060t ok\U000e0041"))


def test_given_a_reason_on_several_lines_when_parsed_then_its_line_breaks_are_kept():
    reason = "duplicate sign-up\nsee ticket 42"

    assert parse_finalize_body(body(taskToken=TOKEN, status="rejected", reason=reason)).reason == reason
