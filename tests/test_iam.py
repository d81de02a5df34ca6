"""IAM sufficiency, proven by the suite and not by the first deploy (issue 17).

Every functional stage records each AWS call each function makes and checks
it against that function's own role in template.json (tests/support/iam.py,
tests/support/stage.py): a call its role would deny fails the test that
caused it, naming the function, the call, the ARN and why. This module:

- runs one of each flow on a stage with an SES sender, as the local stage
  has (onboarding to active with Stripe, the admin and subscriber routes,
  offboarding; a rejection; a timeout, a retry and its approval; each
  outcome mailed, one by the reconciler; each contact-list mode) and
  reports how many distinct calls it checked for each function (in the
  terminal summary, tests/conftest.py), and that every statement of every
  role, resolved with that sender, allowed some call;
- shows that without a sender no role may mail;
- shows that the check denies: a role without a statement the app needs,
  and a subscriber write under a key its condition does not allow;
- pins the evaluator's own rules.
"""
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import dependencies as deps
from scripts.deploy.template import NO_SES_SENDER, Resolver, app_functions, load_template
from scripts.local.lambdas import scheduled_event
from scripts.local.resources import LOCAL_SES_SENDER, stage_parameters
from tests.support import eventually, load_event, unsigned_id_token
from tests.support.faults import aws_error, fail_first
from tests.support.iam import (
    COVERAGE_PROPERTY,
    NEW_ID,
    AwsLookups,
    CallDescriber,
    CallRecorder,
    Policy,
    Recording,
    Request,
    Unevaluable,
    Unmapped,
    coverage_lines,
    coverage_of,
    function_policies,
    role_of,
    role_policy,
    wildcard_match,
)
from tests.support.stage import (
    ACCOUNT,
    REGION,
    STAGE,
    Stage,
    StageWorld,
    app_client,
    finalize_body,
    tenant,
)

TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/tenant-onboarding-{STAGE}-tenants"
FUNCTIONS = sorted(app_functions())
# What a role holds only on a stage with an SES sender (template.json's SesSender condition).
SENDER_ONLY = {"MailOutcome", "SenderInTenantsSesTenant", "TenantsSesTenantTakesSender"}


@pytest.fixture(scope="module", autouse=True)
def stage_world() -> Iterator[None]:
    """This module's stage in moto, closed when it ends (as tests/functional's)."""
    yield
    StageWorld.close()


# --- driving a stage as its users do ---------------------------------------------------------
def call(client: Any, method: str, path: str, body: Any = None, token: str | None = None,
         content_type: str = "application/json") -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = token
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    response = getattr(client.http, method.lower())(path, headers=headers, body=body)
    return response.status_code, json.loads(response.body) if response.body else None


def sign_up(stage: Stage, n: int) -> dict[str, str]:
    """A user of the stage's pool signs up (pre sign-up) and confirms (post confirmation)."""
    t = stage.tenant_with_login(n)
    event = load_event("post_confirmation.json")
    event["userPoolId"] = stage.resources.ref("UserPool")
    event["userName"] = t["tenantId"]
    event["request"]["userAttributes"].update(sub=t["tenantId"], email=t["email"], name=t["name"])
    stage.lambdas.invoke_json("pre_sign_up", {**event, "triggerSource": "PreSignUp_SignUp"})
    stage.lambdas.invoke_json("post_confirmation", event)
    return t


def onboarding(stage: Stage, t: dict[str, str], attempt: int = 1) -> str:
    from chalicelib.workflow import execution_arn, execution_name

    return execution_arn(stage.state_machine_arn, execution_name(t["tenantId"], attempt))


def offboard(stage: Stage, client: Any, t: dict[str, str]) -> None:
    status, _ = call(client, "POST", f"/tenants/{t['tenantId']}/offboarding", {"reason": "left"})
    assert status == 202
    stage.wait_for_status(t["tenantId"], "offboarded", seconds=60)
    stage.offboarding_ended(t["tenantId"])


def reconcile(stage: Stage) -> dict[str, int]:
    counts: dict[str, int] = stage.lambdas.invoke_json("reconcile", scheduled_event())
    assert "errors" not in counts, counts
    return counts


def mailed(stage: Stage, t: dict[str, str], status: str, attempt: int = 1) -> None:
    """Until SES has taken the tenant's outcome mail (outcome_mail.py): so each flow
    makes the mail's calls whose grants it checks, rather than skip them unseen."""
    from chalicelib.outcomes import outcome_key

    key = outcome_key(t["tenantId"], status, attempt)

    def sent() -> bool:
        mail = (stage.record(t["tenantId"]) or {}).get("outcomeMail") or {}
        return bool(mail.get("key") == key and mail.get("state") == "sent")

    eventually(sent, 30, lambda: f"no {status} mail sent: {stage.record(t['tenantId'])}")


# --- the flows ---------------------------------------------------------------------------------
def stripe_and_subscribers(monkeypatch: pytest.MonkeyPatch, localstripe: str) -> Recording:
    """Subscriber-store mode with Stripe: sign-up, the admin's routes, a reminder,
    approval mailed by the reconciler in the tenant's SES tenant (SES took nothing
    while the workflow ran), the tenant's routes, offboarding, the sweeps."""
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    monkeypatch.setenv("APPROVAL_REMINDER_SECONDS", "3600")
    with Stage(monkeypatch, stripe_api_base=localstripe, approval_timeout_seconds=1800) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        t = sign_up(stage, 500)
        stage.wait_for_token(onboarding(stage, t))
        stage.wait_until_asked(t["tenantId"])
        # a repeated step finds its SES tenant made already, and reads whose it is
        task = {"tenant": {key: t[key] for key in ("tenantId", "email", "name")}}
        assert stage.lambdas.invoke_json("create_contact_list", task)["sesTenant"]
        assert reconcile(stage).get("reminded") == 1
        assert call(client, "GET", "/tenants?status=onboarding")[0] == 200
        assert call(client, "GET", "/tenants/counts")[0] == 200
        assert call(client, "GET", f"/tenants?email={t['email']}&match=exact")[0] == 200
        assert call(client, "GET", f"/tenants/{t['tenantId']}")[0] == 200

        # SES takes no mail until the outcome task has tried once; its execution
        # then ends as if its retries had run out, and the sweep sends the mail due
        ses_down = fail_first(app_client(deps.SEND_MAIL), "before-call.sesv2.SendEmail", 1000,
                              answer=aws_error("ServiceUnavailable", "down", 503))
        decision = call(client, "POST", f"/tenants/{t['tenantId']}/decision", {"status": "approved"})
        assert decision[0] == 200, decision
        stage.wait_for_status(t["tenantId"], "active")
        eventually(lambda: ses_down.calls, 30, "the outcome task never tried to mail")
        stage.world.stop_running_executions()
        assert "outcomeMail" not in stage.record(t["tenantId"])  # SES took nothing
        ses_down.remaining = 0
        reconcile(stage)
        mailed(stage, t, "active")

        token = unsigned_id_token(t["tenantId"], t["email"])
        assert call(client, "GET", "/me", token=token)[0] == 200
        assert call(client, "POST", "/me/subscribers", {"email": "one@example.com"}, token)[0] == 201
        rows = [{"email": f"s{n}@example.com"} for n in range(3)]
        assert call(client, "POST", "/me/subscribers/import", rows, token)[0] == 200
        assert call(client, "GET", "/me/subscribers?limit=2", token=token)[0] == 200
        assert call(client, "DELETE", "/me/subscribers/one@example.com", token=token)[0] == 204
        assert call(client, "GET", "/tenants?status=active")[0] == 200

        offboard(stage, client, t)
        reconcile(stage)
    return stage.iam_calls


def rejected_in_list_mode(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """List-per-tenant mode: a rejection through /tenant/finalize gives everything
    back; another tenant is approved, then offboarded."""
    with Stage(monkeypatch, contact_list_mode="list-per-tenant") as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        rejected, approved = sign_up(stage, 501), sign_up(stage, 502)
        token = stage.wait_for_token(onboarding(stage, rejected))
        stage.wait_until_asked(rejected["tenantId"])
        assert call(client, "POST", "/tenant/finalize",
                    json.loads(finalize_body(token, "rejected", "spam")))[0] == 200
        stage.wait_for_end(onboarding(stage, rejected))
        stage.wait_for_status(rejected["tenantId"], "rejected")
        assert not stage.login_enabled(rejected["tenantId"])
        mailed(stage, rejected, "rejected")

        stage.wait_until_asked(approved["tenantId"])
        assert call(client, "POST", f"/tenants/{approved['tenantId']}/decision",
                    {"status": "approved"})[0] == 200
        stage.wait_for_status(approved["tenantId"], "active")
        mailed(stage, approved, "active")
        offboard(stage, client, approved)
    return stage.iam_calls


def timed_out_and_retried_on_the_shared_list(monkeypatch: pytest.MonkeyPatch) -> Recording:
    """Topic-per-tenant mode: a tenant's wait times out (its topic comes off the
    shared list under the lock); a retry starts attempt 2, approved at once;
    the sweep; offboarding."""
    monkeypatch.setenv("RECONCILE_GRACE_SECONDS", "0")
    with Stage(monkeypatch, contact_list_mode="topic-per-tenant",
               approval_timeout_seconds=4) as stage, Client(stage.app, stage_name=STAGE) as client:
        t = sign_up(stage, 503)
        stage.wait_for_status(t["tenantId"], "timeout")
        stage.wait_for_end(onboarding(stage, t))
        mailed(stage, t, "timeout")

        assert call(client, "POST", f"/tenants/{t['tenantId']}/retry")[0] == 200
        token = stage.wait_for_token(onboarding(stage, t, attempt=2))
        assert call(client, "POST", "/tenant/finalize",
                    json.loads(finalize_body(token, "approved")))[0] == 200
        stage.wait_for_status(t["tenantId"], "active")
        mailed(stage, t, "active", attempt=2)
        reconcile(stage)
        offboard(stage, client, t)
    return stage.iam_calls


FLOWS: dict[str, Callable[..., Recording]] = {
    "stripe and subscribers": stripe_and_subscribers,
    "rejected in list mode": rejected_in_list_mode,
    "timed out and retried on the shared list": timed_out_and_retried_on_the_shared_list,
}
_ran: dict[str, Recording] = {}


def run(name: str, monkeypatch: pytest.MonkeyPatch, localstripe: str) -> Recording:
    """A flow's recording: run once per module, whichever test asks first."""
    if name not in _ran:
        flow = FLOWS[name]
        args = (monkeypatch, localstripe) if flow is stripe_and_subscribers else (monkeypatch,)
        _ran[name] = flow(*args)
    return _ran[name]


@pytest.mark.parametrize("name", FLOWS)
def test_every_call_of_a_flow_is_allowed_by_its_functions_own_role(name, monkeypatch, localstripe):
    # the Stage fails on leaving it if any call was denied: here, nothing was
    recording = run(name, monkeypatch, localstripe)

    assert recording.problems == []
    assert all(recording.checked[function] for function in recording.checked)


def test_the_flows_check_every_function_and_use_every_statement_they_grant(
        monkeypatch, localstripe, record_property):
    everything = Recording()
    for name in FLOWS:
        everything.add(run(name, monkeypatch, localstripe))
    coverage = coverage_of(everything.checked, FUNCTIONS)
    record_property(COVERAGE_PROPERTY, coverage)  # the terminal summary names it
    table = "\n".join(coverage_lines(coverage, calls=True))

    template = load_template()
    granted = {function: set() for function in FUNCTIONS}
    for mode, stripe in (("subscriber-store", True), ("list-per-tenant", False),
                         ("topic-per-tenant", False)):
        for function, policy in policies(template, mode, stripe).items():
            granted[function] |= {s.sid for s in policy.statements if s.sid != "Logs"}
    assert SENDER_ONLY <= granted["update_status_and_notify"] & granted["reconcile"]
    for function in FUNCTIONS:
        if granted[function]:
            assert everything.checked[function], f"{function} made no call\n{table}"
        else:  # pre_sign_up: its role grants nothing but its logs
            assert function not in everything.checked, table
        unused = granted[function] - everything.used[function]
        assert not unused, f"{function}: no call needed {sorted(unused)}: narrow its role\n{table}"


def policies(template: dict[str, Any], mode: str = "subscriber-store",
             stripe: bool = False, sender: bool = True) -> dict[str, Policy]:
    """The roles resolved with names standing for the stage's resources, for the
    parameters the flows' stage has (with its SES sender), or without a sender."""
    def physical(logical_id: str, attribute: str | None) -> str:
        return "{" + logical_id + ("." + attribute if attribute else "") + "}"

    parameters = stage_parameters(STAGE, mode, stripe)
    if not sender:
        parameters.update(NO_SES_SENDER)
    return function_policies(template, Resolver(template, parameters, REGION, ACCOUNT, physical))


def test_without_an_ses_sender_no_role_may_mail_and_only_the_senders_statements_go():
    template = load_template()
    with_sender, without_sender = policies(template), policies(template, sender=False)
    identity = LOCAL_SES_SENDER.identity_arn
    ses_tenant = f"arn:aws:ses:{REGION}:{ACCOUNT}:tenant/tenant-1/tn-1"
    mail = [Request("ses:SendEmail", identity),
            Request("ses:CreateTenantResourceAssociation", identity),
            Request("ses:CreateTenantResourceAssociation", ses_tenant,
                    {"aws:ResourceTag/tenant-onboarding:stage": (STAGE,)})]

    senders = {function for function, policy in with_sender.items()
               if any(policy.evaluate(request).allowed for request in mail)}
    assert senders == {"reconcile", "update_status_and_notify"}
    for function in senders:
        assert all(with_sender[function].evaluate(request).allowed for request in mail), function
    for function, policy in without_sender.items():
        assert not any(policy.evaluate(request).allowed for request in mail), function
        dropped = {s.sid for s in with_sender[function].statements} - {
            s.sid for s in policy.statements}
        assert dropped == (SENDER_ONLY if function in senders else set()), function


# --- negative controls: the check denies -----------------------------------------------------
def without(template: dict[str, Any], role: str, sid: str, action: str | None = None) -> dict[str, Any]:
    """A copy of the template whose role lacks a statement (or one action of it)."""
    changed = copy.deepcopy(template)
    document = changed["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    before, kept = copy.deepcopy(document["Statement"]), []
    for statement in document["Statement"]:
        body = statement["Fn::If"][1] if "Fn::If" in statement else statement
        if body.get("Sid") == sid and action is not None:
            body["Action"] = [a for a in body["Action"] if a != action]
        if body.get("Sid") != sid or action is not None:
            kept.append(statement)
    assert kept != before, f"{role} has no {sid}"
    document["Statement"] = kept
    return changed


def test_control_an_api_role_without_dynamodb_query_fails_the_listing(monkeypatch):
    narrowed = without(load_template(), "APIHandlerRole", "ReadAndDecideTenants", "dynamodb:Query")

    with pytest.raises(AssertionError) as failed:
        with Stage(monkeypatch, iam_template=narrowed) as stage, \
                Client(stage.app, stage_name=STAGE) as client:
            # moto does not enforce IAM: the route answers; the check, on leaving, does not pass
            assert call(client, "GET", "/tenants?status=onboarding")[0] == 200

    report = str(failed.value)
    assert (f"api_handler: dynamodb.Query needs dynamodb:Query on {TABLE_ARN}/index/byStatus "
            "dynamodb:LeadingKeys=['onboarding']: APIHandlerRole does not allow it: "
            "no statement names this action on this resource") in report
    assert report.count("needs") == 1


def test_control_a_contact_list_role_without_ses_create_tenant_fails_onboarding(monkeypatch):
    narrowed = without(load_template(), "CreateContactListRole", "CreateTenantsSesTenant")
    t = tenant(510)

    with pytest.raises(AssertionError) as failed:
        with Stage(monkeypatch, iam_template=narrowed) as stage:
            stage.wait_for_token(stage.start(t))

    arn = f"arn:aws:ses:{REGION}:{ACCOUNT}:tenant/tenant-{t['tenantId']}/{NEW_ID}"
    assert (f"create_contact_list: sesv2.CreateTenant needs ses:CreateTenant on {arn} "
            "aws:RequestTag/tenant-onboarding:stage=['local']") in str(failed.value)
    assert "CreateContactListRole does not allow it" in str(failed.value)


def test_control_a_subscriber_write_under_another_tenants_key_is_denied(monkeypatch):
    from chalicelib import subscribers
    from chalicelib.clock import utc_now
    from chalicelib.tenants import NewTenant

    ada, bob = tenant(511), tenant(512)
    with pytest.raises(AssertionError) as failed:
        with Stage(monkeypatch) as stage, Client(stage.app, stage_name=STAGE) as client:
            for t in (ada, bob):
                deps.tenants().create(NewTenant(t["tenantId"], t["email"], t["name"]), utc_now())
                deps.tenants().finish(t["tenantId"], "active", utc_now())
            # a bug that keys Ada's subscriber under Bob's record, not Ada's #subscribers
            monkeypatch.setattr(subscribers, "subscribers_of", lambda tenant_id: bob["tenantId"])
            token = unsigned_id_token(ada["tenantId"], ada["email"])
            assert call(client, "POST", "/me/subscribers", {"email": "x@example.com"}, token)[0] == 201

    [denied] = [line for line in str(failed.value).splitlines() if "needs" in line]
    assert denied.strip() == (
        f"api_handler: dynamodb.TransactWriteItems needs dynamodb:PutItem on {TABLE_ARN} "
        f"dynamodb:LeadingKeys=['{bob['tenantId']}']: APIHandlerRole does not allow it: "
        "TenantsSubscribers names it, but ForAllValues:StringLike dynamodb:LeadingKeys "
        f"['*#subscribers'] is false for ['{bob['tenantId']}']")
    # the same transaction's counter update on Ada's record is the API's to make
    assert "UpdateItem" not in str(failed.value)


def test_control_a_client_used_by_two_functions_is_reported(monkeypatch):
    with pytest.raises(AssertionError, match="a dynamodb client of api_handler made this call"):
        with Stage(monkeypatch):
            with deps.within("api_handler"):
                repository = deps.tenants()
            with deps.within("api_handler"):
                repository.get(tenant(513)["tenantId"])
            with deps.within("create_tenant_record"):
                repository.get(tenant(513)["tenantId"])


# --- the evaluator's rules ---------------------------------------------------------------------
def allow(**statement: Any) -> dict[str, Any]:
    return {"Sid": "S", "Effect": "Allow", **statement}


@pytest.mark.parametrize("pattern, action, expected", [
    ("dynamodb:*", "dynamodb:GetItem", True),
    ("ses:Get*", "ses:GetTenant", True),
    ("ses:Get*", "ses:DeleteTenant", False),
    ("DynamoDB:getitem", "dynamodb:GetItem", True),  # actions ignore case
    ("states:Send?askSuccess", "states:SendTaskSuccess", True),
])
def test_actions_match_with_wildcards_and_without_case(pattern, action, expected):
    policy = Policy("R", [allow(Action=pattern, Resource="*")])

    assert policy.evaluate(Request(action, "arn:x")).allowed is expected


@pytest.mark.parametrize("pattern, arn, expected", [
    ("arn:aws:secretsmanager:r:1:secret:name-??????", "arn:aws:secretsmanager:r:1:secret:name-AbC123", True),
    ("arn:aws:secretsmanager:r:1:secret:name-??????", "arn:aws:secretsmanager:r:1:secret:name-AbC12", False),
    ("arn:aws:ses:r:1:tenant/tenant-*/*", "arn:aws:ses:r:1:tenant/tenant-7/tn-1", True),
    ("arn:aws:ses:r:1:contact-list/tenant-*", "arn:aws:ses:r:1:contact-list/Tenant-7", False),  # case
    ("arn:aws:dynamodb:r:1:table/t", "arn:aws:dynamodb:r:1:table/t/index/i", False),
])
def test_resources_match_with_wildcards_and_case(pattern, arn, expected):
    assert wildcard_match(pattern, arn) is expected


def test_an_explicit_deny_wins_and_not_action_or_not_resource_exclude():
    policy = Policy("R", [
        allow(Action="dynamodb:*", Resource="*"),
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": "*"},
        allow(Sid="AllButSes", NotAction="ses:*", NotResource="arn:secret"),
    ])

    delete = policy.evaluate(Request("dynamodb:DeleteItem", "arn:t"))
    assert not delete.allowed and delete.reason == "denied explicitly by R's NoDeletes"
    assert policy.evaluate(Request("states:StartExecution", "arn:m")).statement == "AllButSes"
    assert not policy.evaluate(Request("ses:GetTenant", "arn:m")).allowed
    assert not policy.evaluate(Request("states:StartExecution", "arn:secret")).allowed


def test_leading_keys_must_all_match_and_absent_keys_pass_for_all_values():
    policy = Policy("R", [allow(Action="dynamodb:PutItem", Resource="*", Condition={
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*#subscribers"]}})])
    leading = "dynamodb:LeadingKeys"

    assert policy.evaluate(Request("dynamodb:PutItem", "t", {leading: ("a#subscribers",)})).allowed
    assert not policy.evaluate(Request("dynamodb:PutItem", "t", {leading: ("a#subscribers", "b")})).allowed
    # IAM's ForAllValues is true of no values: hence every item call carries its keys
    assert policy.evaluate(Request("dynamodb:PutItem", "t")).allowed


def test_tag_conditions_hold_only_for_the_tag_and_its_value():
    policy = Policy("R", [allow(Action="ses:DeleteTenant", Resource="*", Condition={
        "StringEquals": {"aws:ResourceTag/stage": "local"}})])

    def deletes(**tags: str) -> bool:
        context = {f"aws:ResourceTag/{key}": (value,) for key, value in tags.items()}
        return policy.evaluate(Request("ses:DeleteTenant", "arn", context)).allowed

    assert deletes(stage="local") and not deletes(stage="prod") and not deletes()
    assert "StringEquals aws:ResourceTag/stage ['local'] is false for absent" in policy.evaluate(
        Request("ses:DeleteTenant", "arn")).reason


@pytest.mark.parametrize("operator, values, expected", [
    ("StringEqualsIfExists", None, True),
    ("StringNotEquals", None, True),
    ("StringNotEquals", ("prod",), True),
    ("StringNotLike", ("local",), False),
    ("ForAnyValue:StringEquals", None, False),
    ("ForAnyValue:StringEquals", ("x", "local"), True),
])
def test_condition_operators_follow_iams_rules_for_absent_and_many_values(operator, values, expected):
    policy = Policy("R", [allow(Action="*", Resource="*", Condition={
        operator: {"aws:RequestTag/stage": "local"}})])
    context = {} if values is None else {"aws:RequestTag/stage": values}

    assert policy.evaluate(Request("ses:CreateTenant", "arn", context)).allowed is expected


@pytest.mark.parametrize("statement, complaint", [
    (allow(Action="*", Resource="*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
     "condition operator IpAddress"),
    (allow(Action="*", Resource="*", Condition={"StringEquals": {"aws:PrincipalTag/team": "a"}}),
     "condition key aws:PrincipalTag/team"),
    (allow(Action="*", Resource="*", Condition={"StringEquals": {"ses:FromAddress": "a@b"}}),
     "condition key ses:FromAddress"),
    (allow(Action="*", Resource="*", Condition={"StringLike": {"dynamodb:LeadingKeys": "${aws:userid}"}}),
     "policy variables"),
    (allow(Action="*", Resource="*", Principal="*"), "not an identity policy statement"),
    (allow(Resource="*"), "Action and NotAction"),
])
def test_what_the_evaluator_cannot_decide_it_refuses_rather_than_allows(statement, complaint):
    with pytest.raises(Unevaluable, match=complaint):
        Policy("R", [statement])


def test_a_single_valued_operator_on_many_values_refuses():
    policy = Policy("R", [allow(Action="*", Resource="*", Condition={
        "StringLike": {"dynamodb:LeadingKeys": "*#subscribers"}})])

    with pytest.raises(Unevaluable, match="single-valued"):
        policy.evaluate(Request("dynamodb:PutItem", "t", {"dynamodb:LeadingKeys": ("a", "b")}))


def test_a_role_with_a_managed_policy_is_refused_not_guessed():
    template = load_template()
    role = role_of(template, "api_handler")
    template["Resources"][role]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/X"]

    with pytest.raises(Unevaluable, match="ManagedPolicyArns"):
        role_policy(template, role, Resolver(template, {"Stage": STAGE}, REGION, ACCOUNT,
                                             lambda logical_id, attribute: logical_id))


def test_every_function_has_a_role_of_its_own_in_the_template():
    roles = {function: policy.name for function, policy in policies(load_template()).items()}

    assert sorted(roles) == FUNCTIONS
    assert len(set(roles.values())) == len(roles)


# --- describing calls --------------------------------------------------------------------------
class FakeLookups(AwsLookups):
    def __init__(self) -> None:
        pass

    def table(self, name: str) -> dict[str, Any]:
        return {"TableArn": f"arn:t/{name}", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "byStatus", "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"}]}]}


DESCRIBE = CallDescriber(FakeLookups(), REGION, ACCOUNT)


@pytest.mark.parametrize("params, leading", [
    ({"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}, "a"),
    ({"KeyConditionExpression": "#k = :p AND begins_with(sk, :s)", "ExpressionAttributeNames": {
        "#k": "pk"}, "ExpressionAttributeValues": {":p": {"S": "b"}, ":s": {"S": "x"}}}, "b"),
    ({"KeyConditionExpression": ":p = pk", "ExpressionAttributeValues": {":p": {"S": "c"}}}, "c"),
])
def test_a_query_names_the_partition_it_reads(params, leading):
    [request] = DESCRIBE("dynamodb", "Query", {"TableName": "T", **params})

    assert request == Request("dynamodb:Query", "arn:t/T", {"dynamodb:LeadingKeys": (leading,)})


def test_a_query_of_an_index_is_on_the_index_by_its_own_partition_key():
    [request] = DESCRIBE("dynamodb", "Query", {
        "TableName": "T", "IndexName": "byStatus", "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "onboarding"}}})

    assert request.resource == "arn:t/T/index/byStatus"
    assert request.context == {"dynamodb:LeadingKeys": ("onboarding",)}


def test_a_transaction_is_one_request_per_item_as_iam_authorizes_it():
    requests = DESCRIBE("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "T", "Item": {"pk": {"S": "a#subscribers"}, "sk": {"S": "e"}}}},
        {"Update": {"TableName": "T", "Key": {"pk": {"S": "a"}, "sk": {"S": "r"}}}},
        {"ConditionCheck": {"TableName": "T", "Key": {"pk": {"S": "b"}, "sk": {"S": "r"}}}},
    ]})

    assert [(r.action, r.context["dynamodb:LeadingKeys"]) for r in requests] == [
        ("dynamodb:PutItem", ("a#subscribers",)), ("dynamodb:UpdateItem", ("a",)),
        ("dynamodb:ConditionCheckItem", ("b",))]


def test_services_are_named_by_their_iam_prefix():
    [start] = DESCRIBE("stepfunctions", "StartExecution", {"stateMachineArn": "arn:m", "input": "{}"})
    [token] = DESCRIBE("stepfunctions", "SendTaskSuccess", {"taskToken": "t", "output": "{}"})
    [put] = DESCRIBE("events", "PutEvents", {"Entries": [{"EventBusName": "bus"}]})
    [create] = DESCRIBE("sesv2", "CreateContactList", {"ContactListName": "tenant-1"})
    [disable] = DESCRIBE("cognito-idp", "AdminDisableUser", {"UserPoolId": "p1", "Username": "u"})

    assert (start.action, start.resource) == ("states:StartExecution", "arn:m")
    assert (token.action, token.resource) == ("states:SendTaskSuccess", "*")
    assert put.resource == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/bus"
    assert create.resource == f"arn:aws:ses:{REGION}:{ACCOUNT}:contact-list/tenant-1"
    assert disable.resource == f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/p1"


@pytest.mark.parametrize("service, operation, params", [
    ("sesv2", "ListTenants", {}),
    ("dynamodb", "BatchWriteItem", {"RequestItems": {}}),
    ("s3", "GetObject", {"Bucket": "b", "Key": "k"}),
    ("dynamodb", "Query", {"TableName": "T", "KeyConditionExpression": "sk = :s",
                           "ExpressionAttributeValues": {":s": {"S": "x"}}}),
])
def test_a_call_it_cannot_describe_is_a_problem_not_a_pass(service, operation, params):
    with pytest.raises(Unmapped):
        DESCRIBE(service, operation, params)

    class Model:
        name = operation

        class service_model:  # noqa: N801 (botocore's attribute)
            service_name = service

    recorder = CallRecorder(lambda: {"api_handler": Policy("R", [allow(Action="*", Resource="*")])},
                            DESCRIBE)
    with deps.within("api_handler"):
        recorder(params=params, model=Model, context={})

    [problem] = recorder.take().problems
    assert problem.startswith(f"api_handler: {service}.{operation} could not be checked")
