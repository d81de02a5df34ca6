"""End-to-end tier: the local stack started as `make run` starts it
(scripts.local.stack, ephemeral ports), driven over HTTP like a user would:
sign up and confirm through the local Cognito API, find the task token in
the execution history, approve with a POST, see the record and the event."""
import json
import subprocess
import sys

import pytest

from scripts.local.child import child_stack_environment
from scripts.local.client import last_mail
from tests.support import PROJECT_DIR, eventually, localstripe_customers
from tests.support.stacks import PASSWORD, RunningStack, call

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One stack for the module's tests: each uses tenants of its own."""
    running = RunningStack(tmp_path_factory.mktemp("stack") / "state")
    yield running
    running.stop()


@pytest.fixture
def own_stack(tmp_path):
    running = RunningStack(tmp_path / "state")
    yield running
    running.stop()


def test_sign_up_confirm_approve_ends_active_with_a_complete_event(stack):
    tenant_id = stack.sign_up_and_confirm("ada@example.com", "Ada Ltd")
    token = stack.task_token(tenant_id)

    status, body = stack.finalize({"taskToken": token, "status": "approved"})

    assert (status, body) == (
        200,
        {"message": "Tenant onboarding approved successfully", "status": "approved"},
    )
    record = stack.record(tenant_id, "active")
    assert record["email"]["S"] == "ada@example.com"
    assert record["name"]["S"] == "Ada Ltd"
    assert record["list"]["S"] == f"subscribers-{tenant_id}"
    assert record["sesTenant"]["S"] == f"tenant-{tenant_id}"
    assert record["subscribers"]["N"] == "0"
    assert stack.wait_for_event(tenant_id, "Tenant Onboarding Complete") == [
        "Tenant Onboarding Approval Requested", "Tenant Onboarding Complete",
    ]
    # approving twice is a clear conflict, as in AWS
    again = stack.finalize({"taskToken": token, "status": "approved"})
    assert again[0] == 409


def test_the_trigger_sees_what_cognito_would_send(stack):
    email = "grace@example.com"
    tenant_id = stack.sign_up_and_confirm(email, "Grace Co")
    stack.task_token(tenant_id)  # onboarding started

    user = stack.cognito.admin_get_user(UserPoolId=stack.outputs["userPoolId"], Username=email)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["email_verified"] == "true"
    assert user["Username"] == tenant_id == attributes["sub"]
    started = stack.sfn.describe_execution(
        executionArn=stack.execution_arn(tenant_id)
    )
    assert json.loads(started["input"]) == {
        "tenant": {"tenantId": tenant_id, "email": email, "name": "Grace Co"}
    }


def test_sign_up_without_the_required_name_is_refused_as_in_cognito(stack):
    with pytest.raises(stack.cognito.exceptions.InvalidParameterException, match="name"):
        stack.cognito.sign_up(
            ClientId=stack.outputs["userPoolClientId"],
            Username="noname@example.com",
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": "noname@example.com"}],
        )


def test_a_second_stack_on_the_same_state_fails_with_a_clear_message(stack):
    second = subprocess.run(
        [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(stack.state_dir)],
        cwd=PROJECT_DIR,
        env=child_stack_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 1
    assert "a local stack is already running" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout


def test_ctrl_c_stops_the_stack_cleanly(own_stack):
    assert own_stack.stop() == 0
    assert not (own_stack.state_dir / "stack.json").exists()


def test_with_a_stripe_key_the_stack_runs_localstripe_and_stores_the_customer(tmp_path):
    running = RunningStack(tmp_path / "stripe", STRIPE_API_KEY="sk_test_local_e2e")
    try:
        assert running.outputs["stripe"] is True
        tenant_id = running.sign_up_and_confirm("lin@example.com", "Lin GmbH")
        token = running.task_token(tenant_id)
        assert running.finalize({"taskToken": token, "status": "approved"})[0] == 200

        record = running.record(tenant_id, "active")
        customer_id = record["stripeCustomerId"]["S"]
        customers = localstripe_customers(running.outputs["stripeApiBase"], "sk_test_local_e2e")
        assert [c["id"] for c in customers if c["email"] == "lin@example.com"] == [customer_id]
        assert "sk_test_local_e2e" not in running.output()
    finally:
        running.stop()


def test_the_admin_cli_lists_shows_and_decides_against_the_local_stack(stack):
    ada = stack.sign_up_and_confirm("ada-cli@example.com", "Ada CLI Ltd")
    bob = stack.sign_up_and_confirm("bob-cli@example.com", "Bob CLI Ltd")
    for tenant_id in (ada, bob):  # approvals are requested once the wait began
        assert "Tenant Onboarding Approval Requested" in stack.wait_for_event(
            tenant_id, "Tenant Onboarding Approval Requested"
        )

    def run_admin(*args):
        result = stack.run_admin(*args)
        return result.returncode, result.stdout, result.stderr

    code, listing, _ = run_admin("list")
    assert code == 0
    assert listing.splitlines()[0].split() == [
        "TENANT", "ID", "NAME", "EMAIL", "STATUS", "CREATED", "DECIDE", "BY"]
    assert ada in listing and bob in listing and "Ada CLI Ltd" in listing

    assert run_admin("approve", ada)[0] == 0
    code, out, _ = run_admin("reject", bob, "--reason", "duplicate signup")
    assert code == 0 and "Tenant onboarding rejected successfully" in out
    stack.record(ada, "active")
    stack.record(bob, "rejected")

    code, shown, _ = run_admin("show", bob)
    assert code == 0
    assert "duplicate signup" in shown and "decided by" in shown
    assert "e2e-admin@example.com" in shown  # the admin's email, from the ID token
    code, _, error = run_admin("approve", bob)
    assert code == 1
    assert "409" in error and "not awaiting a decision (status rejected)" in error
    assert "Traceback" not in error
    code, out, _ = run_admin("list", "--status", "active")
    assert ada in out and bob not in out
    assert stack.wait_for_event(bob, "Tenant Onboarding Rejected") == [
        "Tenant Onboarding Approval Requested", "Tenant Onboarding Rejected",
    ]


def test_resume_starts_onboarding_for_a_confirmed_user_the_trigger_missed(stack):
    pool = stack.outputs["userPoolId"]
    # confirmed without a sign-up confirmation, so no trigger ran (as when it failed)
    sub = stack.cognito.admin_create_user(
        UserPoolId=pool, Username="missed@example.com", MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "missed@example.com"},
                        {"Name": "name", "Value": "Missed Co"}],
    )["User"]["Username"]
    stack.cognito.admin_set_user_password(
        UserPoolId=pool, Username="missed@example.com", Password=PASSWORD, Permanent=True
    )

    run_admin = stack.run_admin

    first = run_admin("resume", sub)
    second = run_admin("resume", sub)

    assert first.returncode == 0, first.stderr
    assert "started as" in first.stdout
    # resume tells the truth: it starts only what never started
    assert second.returncode == 1 and "already runs as" in second.stderr
    assert stack.task_token(sub)
    record = stack.record(sub, "onboarding")
    assert (record["email"]["S"], record["name"]["S"]) == ("missed@example.com", "Missed Co")
    executions = stack.sfn.list_executions(stateMachineArn=stack.outputs["stateMachineArn"])
    assert [e["name"] for e in executions["executions"]].count(sub) == 1
    unknown = run_admin("resume", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 1 and "no user" in unknown.stderr

    stack.sfn.stop_execution(executionArn=stack.outputs["stateMachineArn"].replace(
        ":stateMachine:", ":execution:") + f":{sub}")
    ended = run_admin("resume", sub)
    assert ended.returncode == 1
    assert "already ran and ended ABORTED" in ended.stderr and f"retry {sub}" in ended.stderr


def test_the_local_resources_are_the_templates_own(stack):
    """make run creates its table and user pool from template.json's properties."""
    from scripts.deploy.template import load_template

    declared = load_template()["Resources"]
    table = stack.ddb.describe_table(TableName=stack.outputs["tableName"])["Table"]
    want_table = declared["TenantTable"]["Properties"]
    assert table["KeySchema"] == want_table["KeySchema"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    wanted = {i["IndexName"]: i for i in want_table["GlobalSecondaryIndexes"]}
    assert set(indexes) == set(wanted) == {"byStatus", "byOutcomeDue", "byReleaseDue",
                                           "bySubscribedAt", "byEmail"}
    for name, index in indexes.items():
        assert index["KeySchema"] == wanted[name]["KeySchema"], name
        assert index["Projection"] == wanted[name]["Projection"], name
    assert "taskToken" not in json.dumps(indexes["byStatus"]["Projection"])

    pool = stack.cognito.describe_user_pool(UserPoolId=stack.outputs["userPoolId"])["UserPool"]
    want_pool = declared["UserPool"]["Properties"]
    required = {a["Name"] for a in pool["SchemaAttributes"] if a.get("Required")}
    assert required == {a["Name"] for a in want_pool["Schema"] if a["Required"]}
    assert pool["UsernameAttributes"] == want_pool["UsernameAttributes"]
    assert pool["UsernameConfiguration"] == want_pool["UsernameConfiguration"]
    assert pool["AutoVerifiedAttributes"] == want_pool["AutoVerifiedAttributes"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == (
        want_pool["Policies"]["PasswordPolicy"]["MinimumLength"])
    assert pool["LambdaConfig"]["PostConfirmation"].endswith(
        ":function:tenant-onboarding-local-post_confirmation")


REFUSED_NAMES = {
    "blank": "   ",
    "terminal escapes": "Acme\x1b[2K\r\x1b[32mTotally Legit Bank\x1b[0m",
    "newline": "Acme\nLtd",
    "right-to-left override": "Acme \u202eknaB",
    "zero-width space": "Ac\u200bme Ltd",
    "129 characters": "x" * 129,
}


@pytest.mark.parametrize("name", sorted(REFUSED_NAMES))
def test_pre_sign_up_refuses_names_no_admin_should_be_shown(stack, name):
    email = f"refused-{sorted(REFUSED_NAMES).index(name)}@example.com"
    with pytest.raises(stack.cognito.exceptions.UserLambdaValidationException) as refused:
        stack.cognito.sign_up(
            ClientId=stack.outputs["userPoolClientId"], Username=email, Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "name", "Value": REFUSED_NAMES[name]}],
        )
    message = refused.value.response["Error"]["Message"]
    assert message.startswith("PreSignUp failed with error Company name")
    with pytest.raises(stack.cognito.exceptions.UserNotFoundException):
        stack.cognito.admin_get_user(UserPoolId=stack.outputs["userPoolId"], Username=email)


def test_pre_sign_up_refuses_an_email_over_254_characters(stack):
    email = "a" * 243 + "@example.com"  # 255 characters
    with pytest.raises(stack.cognito.exceptions.UserLambdaValidationException, match="Email"):
        stack.cognito.sign_up(
            ClientId=stack.outputs["userPoolClientId"], Username=email, Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "Long"}],
        )


def test_a_refused_sign_up_is_one_line_of_the_stacks_log_not_a_traceback(stack):
    before = len(stack.output())
    email = "refused-logged@example.com"
    with pytest.raises(stack.cognito.exceptions.UserLambdaValidationException):
        stack.cognito.sign_up(
            ClientId=stack.outputs["userPoolClientId"], Username=email, Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "  "}])

    said = stack.output()[before:]
    [line] = [line for line in said.splitlines() if "Company name is required" in line]
    assert "pre_sign_up refused the sign-up: Company name is required" in line
    assert "Traceback" not in said


def test_the_stack_says_tokens_are_checked_not_chalices_unsupported_authorizer_warning(stack):
    assert call(stack, "GET", "/tenants?status=onboarding", stack.admin_token)[0] == 200

    said = stack.output()
    assert "every token is checked as API Gateway's Cognito authorizers check it" in said
    assert "not a supported in local mode" not in said


@pytest.mark.parametrize("name", ["Zoë & Søn — Ltd", "株式会社サンプル"])
def test_international_names_are_onboarded_unchanged(stack, name):
    email = f"intl-{len(name)}@example.com"
    tenant_id = stack.sign_up_and_confirm(email, name)

    assert stack.record(tenant_id, "onboarding")["name"]["S"] == name


def test_the_admin_cli_shows_control_characters_as_text(stack):
    """A name stored before the door was checked still cannot rewrite the admin's screen."""
    tenant_id = stack.sign_up_and_confirm("escapes@example.com", "Plain Name")
    stack.task_token(tenant_id)
    stack.ddb.update_item(
        TableName=stack.outputs["tableName"], Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}},
        UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "Acme\x1b[2K\r\x1b[32mTotally Legit Bank\x1b[0m\nX"}})

    listing = stack.run_admin("list").stdout

    [line] = [line for line in listing.splitlines() if tenant_id in line]
    assert "Acme\\x1b[2K\\r\\x1b[32mTotally Legit Bank\\x1b[0m\\nX" in line
    assert "\x1b" not in listing and "\r" not in listing


def test_retry_and_reconcile_from_the_admin_cli(stack):
    tenant_id = stack.sign_up_and_confirm("retry-cli@example.com", "Retry CLI Ltd")
    stack.task_token(tenant_id)
    run_admin = stack.run_admin

    assert run_admin("retry", tenant_id).returncode == 1  # still onboarding: 409
    stack.sfn.stop_execution(executionArn=stack.execution_arn(tenant_id))
    # the stack's reconciler keeps a grace period of 10 minutes, but not for a
    # run that has ended: the tenant fails now, and the admin can retry it now
    swept = run_admin("reconcile")
    assert swept.returncode == 0 and swept.stdout.startswith("Reconciled:")
    assert "ended ABORTED" in stack.record(tenant_id, "failed")["failureReason"]["S"]
    retried = run_admin("retry", tenant_id)
    assert retried.returncode == 0 and "as attempt 2" in retried.stdout


def test_an_aborted_onboarding_is_failed_by_the_reconciler_then_retried_to_active(tmp_path):
    running = RunningStack(tmp_path / "recovery", RECONCILE_GRACE_SECONDS="0",
                           LOCAL_RECONCILE_SECONDS="0")
    try:
        tenant_id = running.sign_up_and_confirm("aborted@example.com", "Aborted Ltd")
        running.task_token(tenant_id)
        running.sfn.stop_execution(executionArn=running.execution_arn(tenant_id))

        def run_admin(*args):
            result = running.run_admin(*args)
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert "failed (stuck) 1" in run_admin("reconcile")
        failed = running.record(tenant_id, "failed")
        assert "ended ABORTED" in failed["failureReason"]["S"]

        assert f"Retrying onboarding of {tenant_id} as attempt 2" in run_admin("retry", tenant_id)
        running.record(tenant_id, "onboarding")
        # attempt 2's wait has begun once the record has its deadline
        eventually(lambda: "decideBy" in running.ddb.get_item(
            TableName=running.outputs["tableName"],
            Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}})["Item"],
            20, "attempt 2 never began its wait")
        run_admin("approve", tenant_id)
        record = running.record(tenant_id, "active")
        assert record["attempts"]["N"] == "2"
        assert running.wait_for_event(tenant_id, "Tenant Onboarding Complete") == [
            "Tenant Onboarding Approval Requested", "Tenant Onboarding Failed",
            "Tenant Onboarding Approval Requested", "Tenant Onboarding Complete"]
    finally:
        running.stop()


# --- authorization, as API Gateway does it ---------------------------------------------
@pytest.mark.parametrize("method, path", [
    ("GET", "/tenants"), ("GET", "/tenants/00000000-0000-4000-8000-000000000001"),
    ("POST", "/tenant/finalize"), ("POST", "/tenants/00000000-0000-4000-8000-000000000001/retry"),
    ("GET", "/me"),
])
def test_a_request_without_a_valid_token_gets_401_as_from_api_gateway(stack, method, path):
    for token in (None, "not-a-jwt", stack.admin_token[:-4] + "AAAA"):
        assert call(stack, method, path, token, {} if method == "POST" else None) == (
            401, {"message": "Unauthorized"}), token


# --- what the gateway answers itself ----------------------------------------------------
def raw(stack, method, path, headers=None, body=None):
    """One request as sent, whatever it is: (status, headers, body bytes)."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(stack.outputs["apiUrl"])
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
    try:
        connection.request(method, where.path.rstrip("/") + path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def assert_gateway_json(answer, status, code):
    got, headers, body = answer
    assert got == status, (got, headers, body[:200])
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    payload = json.loads(body)
    assert payload["Code"] == code and payload["Message"]
    return payload


@pytest.mark.parametrize("method, path", [
    ("GET", "/nope"), ("POST", "/tenants/nope/decisions"), ("GET", "/"), ("DELETE", "/assets"),
])
def test_an_unknown_route_is_a_json_404_that_repeats_nothing_of_the_request(stack, method, path):
    token = stack.admin_token
    for headers in ({}, {"Authorization": token}, {"Authorization": "Bearer " + token}):
        status, answer_headers, body = answer = raw(stack, method, path, headers)

        payload = assert_gateway_json(answer, 404, "NotFoundError")
        assert payload == {"Code": "NotFoundError", "Message": "No route answers this method and path."}
        said = body.decode() + json.dumps(answer_headers)
        assert token[:40] not in said and token[-40:] not in said and "Bearer" not in said


def test_a_url_over_64_kib_is_a_json_414(stack):
    answer = raw(stack, "GET", "/tenants?status=" + "a" * 70_000, {"Authorization": stack.admin_token})

    payload = assert_gateway_json(answer, 414, "UriTooLongError")
    assert "aaaa" not in payload["Message"]


def test_a_header_over_64_kib_is_a_json_431(stack):
    answer = raw(stack, "GET", "/tenants", {"Authorization": stack.admin_token, "X-Big": "b" * 70_000})

    assert_gateway_json(answer, 431, "RequestHeaderFieldsTooLargeError")


def test_a_body_of_a_type_the_route_does_not_take_is_a_json_415(stack):
    answer = raw(stack, "POST", "/tenant/finalize",
                 {"Authorization": stack.admin_token, "Content-Type": "text/plain"}, b"approve")

    assert "text/plain" in assert_gateway_json(answer, 415, "UnsupportedMediaType")["Message"]


def test_a_method_http_does_not_know_is_a_json_501(stack):
    assert_gateway_json(raw(stack, "BREW", "/tenants"), 501, "NotImplementedError")


def test_the_authorizers_401_carries_the_apis_headers(stack):
    status, headers, body = raw(stack, "GET", "/tenants", {"Authorization": "not-a-jwt"})

    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"


def test_a_tenants_token_opens_me_and_no_admin_route(stack):
    tenant_id = stack.sign_up_and_confirm("me@example.com", "Me & Co")
    stack.task_token(tenant_id)
    tokens = stack.cognito.initiate_auth(
        ClientId=stack.outputs["userPoolClientId"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "me@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]

    status, me = call(stack, "GET", "/me", tokens["IdToken"])
    assert status == 200
    assert me["tenantId"] == tenant_id and me["name"] == "Me & Co" and me["status"] == "onboarding"
    assert set(me) <= {"tenantId", "status", "name", "email", "createdAt", "decideBy", "reason"}
    assert call(stack, "GET", "/tenants", tokens["IdToken"])[0] == 401  # not an admin
    assert call(stack, "GET", "/me", stack.admin_token)[0] == 401      # not a tenant
    assert call(stack, "GET", "/me", tokens["AccessToken"])[0] == 401   # an ID token only


def test_a_wrong_or_expired_confirmation_code_is_refused_as_cognito_does(stack):
    client_id = stack.outputs["userPoolClientId"]
    stack.cognito.sign_up(ClientId=client_id, Username="codes@example.com", Password=PASSWORD,
                          UserAttributes=[{"Name": "email", "Value": "codes@example.com"},
                                          {"Name": "name", "Value": "Codes Ltd"}])
    code = last_mail(stack.state_dir, "codes@example.com", "code")
    wrong = "000000" if code != "000000" else "111111"

    with pytest.raises(stack.cognito.exceptions.CodeMismatchException):
        stack.cognito.confirm_sign_up(ClientId=client_id, Username="codes@example.com",
                                      ConfirmationCode=wrong)
    stack.cognito.confirm_sign_up(ClientId=client_id, Username="codes@example.com",
                                  ConfirmationCode=code)


def outcome_mail(stack, to: str) -> dict:
    """The outcome mail the local SES put in the outbox for ``to`` (waits for it)."""
    outbox = stack.state_dir / "outbox.jsonl"

    def sent() -> dict | None:
        mail = [m for m in map(json.loads, outbox.read_text().splitlines())
                if m.get("to") == to and m.get("subject", "").startswith("Your sign-up for")]
        return mail[-1] if mail else None

    return eventually(sent, 20, f"no outcome mail for {to} in {outbox}")


def test_the_tenant_gets_its_outcome_mail_in_the_outbox(stack):
    approved = stack.sign_up_and_confirm("mailed@example.com", "Mailed Ltd")
    rejected = stack.sign_up_and_confirm("refused@example.com", "Refused Ltd")
    assert stack.finalize({"taskToken": stack.task_token(approved), "status": "approved"})[0] == 200
    assert stack.finalize({"taskToken": stack.task_token(rejected), "status": "rejected",
                           "reason": "not a business we serve"})[0] == 200

    welcome = outcome_mail(stack, "mailed@example.com")
    assert welcome["subject"] == "Your sign-up for Mailed Ltd is approved"
    assert f"Sign in at {stack.outputs['apiUrl']}/signup " in welcome["body"]
    assert welcome["from"] == "onboarding@example.com"  # the local stage's ses_sender
    assert welcome["sesTenant"] == f"tenant-{approved}"
    refusal = outcome_mail(stack, "refused@example.com")
    assert "The reason given: not a business we serve" in refusal["body"]
    assert set(welcome) >= {"to", "subject", "body", "sentAt"}
