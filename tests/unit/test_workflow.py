import json
import logging

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.errors import AwsServiceUnavailable
from chalicelib.tenants import NewTenant
from chalicelib.workflow import (
    DecisionNotDelivered,
    OnboardingWorkflow,
    execution_arn,
    execution_input,
    redact_token,
)
from tests.unit.conftest import REGION, ROLE_ARN, TENANT_ID, FailingClient

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfake-task-token-" + "x" * 200 + "tail42"


@pytest.fixture
def sfn(aws):
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def machine_arn(sfn):
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}
    return sfn.create_state_machine(
        name="onboarding", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]


# --- start --------------------------------------------------------------------
def test_given_a_tenant_when_started_then_the_execution_is_named_after_the_tenant(
    sfn, machine_arn, new_tenant
):
    arn = OnboardingWorkflow(sfn, machine_arn).start(new_tenant)

    assert sfn.describe_execution(executionArn=arn)["name"] == TENANT_ID


def test_given_a_tenant_when_started_then_the_input_is_the_tenant_object(
    sfn, machine_arn, new_tenant
):
    arn = OnboardingWorkflow(sfn, machine_arn).start(new_tenant)

    assert json.loads(sfn.describe_execution(executionArn=arn)["input"]) == {
        "tenant": {"tenantId": TENANT_ID, "email": "ada@example.com", "name": "Ada Ltd"}
    }


def test_given_the_same_tenant_when_input_is_built_twice_then_it_is_byte_identical():
    one = NewTenant(tenant_id="t", email="e@example.com", name="N")
    again = NewTenant(tenant_id="t", email="e@example.com", name="N")

    assert execution_input(one) == execution_input(again)
    assert execution_input(one) == (
        '{"tenant":{"email":"e@example.com","name":"N","tenantId":"t"}}'
    )


def test_given_a_started_tenant_when_started_again_then_same_arn_and_one_execution(
    sfn, machine_arn, new_tenant
):
    workflow = OnboardingWorkflow(sfn, machine_arn)
    first = workflow.start(new_tenant)

    second = workflow.start(new_tenant)

    assert second == first
    assert len(sfn.list_executions(stateMachineArn=machine_arn)["executions"]) == 1


def test_given_execution_already_exists_when_started_then_the_derived_arn_is_returned(
    sfn, machine_arn, new_tenant
):
    # Same name, other input: moto (like AWS) answers ExecutionAlreadyExists.
    sfn.start_execution(stateMachineArn=machine_arn, name=TENANT_ID, input="{}")

    arn = OnboardingWorkflow(sfn, machine_arn).start(new_tenant)

    [execution] = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    assert arn == execution["executionArn"]


def test_given_step_functions_throttles_when_started_then_aws_service_unavailable(new_tenant):
    workflow = OnboardingWorkflow(FailingClient("ThrottlingException"), "arn:x:stateMachine:m")

    with pytest.raises(AwsServiceUnavailable):
        workflow.start(new_tenant)


def test_given_another_error_when_started_then_it_propagates(new_tenant):
    workflow = OnboardingWorkflow(FailingClient("StateMachineDoesNotExist"), "arn:x:stateMachine:m")

    with pytest.raises(ClientError):
        workflow.start(new_tenant)


# --- execution_arn ------------------------------------------------------------
def test_given_a_state_machine_arn_when_execution_arn_is_derived_then_it_names_the_execution():
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:tenant-onboarding-dev"

    assert execution_arn(machine, "t-1") == (
        "arn:aws:states:us-east-1:123456789012:execution:tenant-onboarding-dev:t-1"
    )


def test_given_moto_started_an_execution_then_the_derived_arn_matches_it(sfn, machine_arn):
    started = sfn.start_execution(stateMachineArn=machine_arn, name="t-9", input="{}")

    assert execution_arn(machine_arn, "t-9") == started["executionArn"]


# --- redact_token -------------------------------------------------------------
@pytest.mark.parametrize(
    "token", ["", "a", "abcdefghijkl", "abcdefghijklm", TOKEN, "x" * 2048]
)
def test_given_any_token_when_redacted_then_the_full_token_is_never_returned(token):
    redacted = redact_token(token)

    assert token == "" or token not in redacted
    assert len(redacted) <= 9


def test_given_a_long_token_when_redacted_then_its_tail_is_kept_for_correlation():
    assert redact_token(TOKEN) == "...tail42"


# --- send_decision ------------------------------------------------------------
class RecordingSfn:
    def __init__(self):
        self.calls = []

    def send_task_success(self, taskToken, output):
        self.calls.append((taskToken, output))
        return {}


def test_given_a_decision_when_sent_then_send_task_success_gets_token_and_json_output():
    sfn = RecordingSfn()

    OnboardingWorkflow(sfn, "arn:x:stateMachine:m").send_decision(
        TOKEN, {"status": "approved", "reason": None}
    )

    [(token, output)] = sfn.calls
    assert token == TOKEN
    assert json.loads(output) == {"status": "approved", "reason": None}


def test_given_a_decision_when_delivered_then_the_token_is_not_logged_in_full(caplog):
    caplog.set_level(logging.DEBUG, logger="chalicelib")

    OnboardingWorkflow(RecordingSfn(), "arn:x:stateMachine:m").send_decision(
        TOKEN, {"status": "approved"}
    )

    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in repr(record.__dict__)


@pytest.mark.parametrize(
    "code, reason",
    [
        ("InvalidToken", "invalid_token"),
        ("TaskDoesNotExist", "unknown_task"),
        ("TaskTimedOut", "not_waiting"),
    ],
)
def test_given_step_functions_refuses_when_sent_then_decision_not_delivered_with_reason(
    code, reason
):
    workflow = OnboardingWorkflow(FailingClient(code), "arn:x:stateMachine:m")

    with pytest.raises(DecisionNotDelivered) as raised:
        workflow.send_decision(TOKEN, {"status": "approved"})

    assert raised.value.reason == reason
    assert TOKEN not in str(raised.value)


def test_given_step_functions_throttles_when_sent_then_aws_service_unavailable():
    workflow = OnboardingWorkflow(FailingClient("ThrottlingException"), "arn:x:stateMachine:m")

    with pytest.raises(AwsServiceUnavailable):
        workflow.send_decision(TOKEN, {"status": "approved"})


def test_given_an_unexpected_error_when_sent_then_it_propagates_as_a_client_error():
    workflow = OnboardingWorkflow(FailingClient("InvalidOutput"), "arn:x:stateMachine:m")

    with pytest.raises(ClientError) as raised:
        workflow.send_decision(TOKEN, {"status": "approved"})
    assert raised.value.response["Error"]["Code"] == "InvalidOutput"

