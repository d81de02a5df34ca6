"""Bad input never answers 500 or leaks a stack trace: every case is a clear
4xx from the route, or a clear refusal from the trigger."""
import copy
import json

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.signup import InvalidSignupEvent
from tests.support import load_event
from tests.support.stage import STAGE, Stage


@pytest.fixture(scope="module")
def client():
    monkeypatch = pytest.MonkeyPatch()
    try:
        with Stage(monkeypatch) as stage:
            with Client(stage.app, stage_name=STAGE) as client:
                client.stage = stage
                yield client
    finally:
        monkeypatch.undo()


@pytest.fixture(autouse=True)
def stage_environment(client, monkeypatch):
    # conftest isolates every test's environment; the module's stage outlives that
    client.stage.apply_environment(monkeypatch)


def post(client, body, content_type="application/json"):
    return client.http.post("/tenant/finalize", headers={"Content-Type": content_type}, body=body)


def assert_clear_4xx(response, status=400):
    assert response.status_code == status, response.body
    payload = json.loads(response.body)
    assert payload["Message"]
    assert "Traceback" not in response.body.decode()


LONG_TOKEN = "t" * 2049
CASES = {
    "no body": (b"", 400, "request body is required"),
    "non-JSON": (b"approve it please", 400, "not valid JSON"),
    "a JSON array": (b'[{"taskToken": "t", "status": "approved"}]', 400, "must be a JSON object"),
    "a JSON string": (b'"approved"', 400, "must be a JSON object"),
    "missing taskToken": (b'{"status": "approved"}', 400, "taskToken is required"),
    "empty taskToken": (b'{"taskToken": "  ", "status": "approved"}', 400, "taskToken is required"),
    "token over 2048": (
        json.dumps({"taskToken": LONG_TOKEN, "status": "approved"}).encode(),
        400, "longer than 2048",
    ),
    "malformed token": (
        b'{"taskToken": "%%%not-a-token", "status": "approved"}', 400, "not a valid",
    ),
    "unknown token": (
        b'{"taskToken": "00000000-0000-4000-8000-000000000000", "status": "approved"}',
        400, "not a valid",
    ),
    "status other than approved/rejected": (
        b'{"taskToken": "t", "status": "APPROVED"}', 400, 'status must be "approved"',
    ),
    "status missing": (b'{"taskToken": "t"}', 400, 'status must be "approved"'),
    "token of wrong type": (b'{"taskToken": 42, "status": "approved"}', 400, "taskToken is required"),
    "status of wrong type": (b'{"taskToken": "t", "status": true}', 400, "status must be"),
    "reason of wrong type": (
        b'{"taskToken": "t", "status": "rejected", "reason": ["x"]}', 400, "reason must be a string",
    ),
    "reason over 1000": (
        json.dumps({"taskToken": "t", "status": "rejected", "reason": "r" * 1001}).encode(),
        400, "longer than 1000",
    ),
    "reason with an invisible character": (
        json.dumps({"taskToken": "t", "status": "rejected", "reason": "spam\ufeff"}).encode(),
        400, "reason must not contain invisible, control or text-direction characters (U+FEFF)",
    ),
    "unknown fields": (
        b'{"taskToken": "t", "status": "approved", "approver": "me"}', 400, "unknown field(s): approver",
    ),
    "a huge body": (
        json.dumps({"taskToken": "t", "status": "approved", "reason": "x" * 200_000}).encode(),
        413, "larger than",
    ),
    "invalid UTF-8": (b'{"taskToken": "\xff\xfe", "status": "approved"}', 400, "not valid JSON"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_finalize_answers_bad_input_with_a_clear_4xx(client, name):
    body, status, fragment = CASES[name]

    response = post(client, body)

    assert_clear_4xx(response, status)
    assert fragment in json.loads(response.body)["Message"]


def test_finalize_with_another_content_type_is_refused(client):
    response = post(client, b"taskToken=t&status=approved", "application/x-www-form-urlencoded")

    assert response.status_code == 415


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
finalize_like = st.fixed_dictionaries(
    {},
    optional={
        "taskToken": json_values | st.text(max_size=60),
        "status": json_values | st.sampled_from(["approved", "rejected"]),
        "reason": json_values | st.text(max_size=60),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, finalize_like))
def test_finalize_answers_any_json_with_2xx_or_4xx_and_a_json_body(client, body):
    response = post(client, json.dumps(body))

    assert 200 <= response.status_code < 500, (body, response.body)
    payload = json.loads(response.body)
    if response.status_code >= 400:
        assert isinstance(payload.get("Message"), str) and payload["Message"]


# --- the trigger -----------------------------------------------------------------
def test_trigger_without_sub_refuses_clearly_and_starts_nothing(client):
    event = copy.deepcopy(load_event("post_confirmation.json"))
    del event["request"]["userAttributes"]["sub"]

    with pytest.raises(InvalidSignupEvent, match="no usable sub"):
        client.lambda_.invoke("post_confirmation", event)
    assert executions_of(client) == []


def test_trigger_without_email_refuses_clearly_and_starts_nothing(client):
    event = copy.deepcopy(load_event("post_confirmation.json"))
    del event["request"]["userAttributes"]["email"]

    with pytest.raises(InvalidSignupEvent, match="has no email"):
        client.lambda_.invoke("post_confirmation", event)
    assert executions_of(client) == []


@pytest.mark.parametrize(
    "source", ["PostConfirmation_ConfirmForgotPassword", "PreSignUp_SignUp", "Something_New", None]
)
def test_trigger_for_other_sources_returns_the_event_and_starts_nothing(client, source):
    event = copy.deepcopy(load_event("post_confirmation.json"))
    event["triggerSource"] = source

    assert client.lambda_.invoke("post_confirmation", event).payload == event
    assert executions_of(client) == []


def executions_of(client):
    stage = client.stage
    return stage.sfn.list_executions(stateMachineArn=stage.state_machine_arn)["executions"]
