"""statemachine.json against the app: placeholders, retries, catches, names."""
import json

import pytest

import app as app_module
from chalicelib import errors
from scripts.deploy import template as stack_template

DEFINITION = stack_template.load_definition()
SUBSTITUTIONS = stack_template.load_template()["Resources"][stack_template.STATE_MACHINE][
    "Properties"
]["DefinitionSubstitutions"]
TASKS = {name: s for name, s in DEFINITION["States"].items() if s["Type"] == "Task"}
DECLARED = {fn.name for fn in app_module.app.pure_lambda_functions}


def test_every_placeholder_is_substituted_with_a_task_function_the_app_declares():
    by_logical_id = {logical: name for name, logical in stack_template.app_functions().items()}
    used = stack_template.placeholders(DEFINITION)

    assert used, "the definition should reference the app's functions"
    assert used == set(SUBSTITUTIONS), used ^ set(SUBSTITUTIONS)
    for placeholder, value in SUBSTITUTIONS.items():
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn" and by_logical_id[logical] in DECLARED, placeholder
    named = {by_logical_id[v["Fn::GetAtt"][0]] for v in SUBSTITUTIONS.values()}
    offboarding = stack_template.load_template()["Resources"]["OffboardingStateMachine"][
        "Properties"]["DefinitionSubstitutions"]
    assert stack_template.placeholders(
        stack_template.load_definition(logical_id="OffboardingStateMachine")) == set(offboarding)
    named |= {by_logical_id[v["Fn::GetAtt"][0]] for v in offboarding.values()}
    # every task function runs in a state machine; the two Cognito triggers do not
    assert named == DECLARED - {"pre_sign_up", "post_confirmation"}


def test_every_task_retries_and_catches():
    for name, state in TASKS.items():
        assert state.get("Retry"), f"{name} has no Retry"
        assert state.get("Catch"), f"{name} has no Catch"
        lambda_errors = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert "Lambda.ServiceException" in lambda_errors, name
        assert "Lambda.TooManyRequestsException" in lambda_errors, name


def test_every_error_name_in_the_definition_is_raised_by_the_app_or_aws():
    named = {
        error
        for state in DEFINITION["States"].values()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for error in rule["ErrorEquals"]
    }
    ours = {n for n in named if not n.startswith(("States.", "Lambda."))}

    assert ours == {cls.__name__ for cls in errors.TRANSIENT_ERRORS + errors.PERMANENT_ERRORS}


def test_permanent_errors_are_never_retried_and_transient_ones_are():
    for name, state in TASKS.items():
        first = state["Retry"][0]
        assert first["MaxAttempts"] == 0, name
        assert set(first["ErrorEquals"]) == {c.__name__ for c in errors.PERMANENT_ERRORS}
        transient = [r for r in state["Retry"] if "AwsServiceUnavailable" in r["ErrorEquals"]]
        assert transient and transient[0]["MaxAttempts"] >= 3, name
        assert transient[0].get("JitterStrategy") == "FULL", name


def test_the_wait_is_a_task_token_callback_of_24_hours_with_a_timeout_path():
    wait = DEFINITION["States"]["Wait For Callback"]

    assert wait["Resource"].endswith(".waitForTaskToken")
    assert wait["TimeoutSeconds"] == 86400
    assert wait["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert wait["Catch"][0] == {
        "ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Approval Timed Out",
    }
    # a timeout must not be retried into a second 24-hour wait (States.ALL
    # would match it; States.TaskFailed does not)
    assert all("States.ALL" not in r["ErrorEquals"] for r in wait["Retry"])
    assert all("States.Timeout" not in r["ErrorEquals"] for r in wait["Retry"])
    assert wait["Retry"][-1]["ErrorEquals"] == ["States.TaskFailed"]


def test_the_happy_path_visits_the_seed_states_in_order():
    states = DEFINITION["States"]
    path, name = [], DEFINITION["StartAt"]
    while name:
        path.append(name)
        state = states[name]
        if state["Type"] == "Choice":
            name = state["Choices"][0]["Next"]
        else:
            name = state.get("Next")

    assert path == [
        "Create Tenant Record",
        "Stripe Configured?",
        "Create Stripe Customer",
        "Update Tenant With Stripe ID",
        "Create Contact List",
        "Wait For Callback",
        "Process Callback Result",
        "Approved",
        "Update Status & Notify",
    ]
    assert states["Stripe Configured?"]["Default"] == "Create Contact List"


def test_substitution_fills_every_placeholder_and_the_wait_can_be_shortened():
    arns = {p: f"arn:aws:lambda:us-east-1:1:function:x-{p}" for p in SUBSTITUTIONS}

    rendered = stack_template.substitute(DEFINITION, arns)
    shortened = stack_template.shorten_wait(stack_template.substitute(DEFINITION, arns), 3)

    assert "${" not in json.dumps(rendered)
    assert rendered["States"]["Create Tenant Record"]["Resource"] == arns[
        "CreateTenantRecordFunctionArn"
    ]
    assert shortened["States"]["Wait For Callback"]["TimeoutSeconds"] == 3
    assert DEFINITION["States"]["Wait For Callback"]["TimeoutSeconds"] == 86400  # not mutated


def test_substitution_refuses_a_missing_function_arn():
    with pytest.raises(stack_template.TemplateError, match="CreateTenantRecordFunctionArn"):
        stack_template.substitute(DEFINITION, {})
