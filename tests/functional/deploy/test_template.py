"""What `make package` hands CloudFormation, checked offline as AWS would check it.

The packaged template (chalice package merged with template.json) passes
cfn-lint with its SAM support; the admin routes are IAM-authorized; every
function has its own least-privilege role referencing the stage's own
resources; the data is retained; the Stripe key and any account-specific
value stay out; the zips carry bytecode and rebuild byte for byte.
"""
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.events import (
    APPROVAL_REMINDER,
    APPROVAL_REQUESTED,
    CATALOGUE,
    OFFBOARDING_FAILED,
    ONBOARDING_FAILED,
)
from chalicelib.locks import LeaseLock
from chalicelib.reconciler import METRICS as RECONCILER_METRICS
from chalicelib.reconciler import (
    OUTCOME_EVENTS_DUE,
    RELEASE_FAILURES,
    STUCK_TENANTS,
    metrics_namespace,
)
from chalicelib.settings import CONTACT_LIST_MODES
from scripts.deploy import alarms as stage_alarms
from scripts.deploy import package
from scripts.deploy import template as stack_template
from scripts.deploy.template import Resolver, app_functions
from scripts.shared import PROJECT_DIR
from tests.support.iam import wildcard_match as iam_match

ACCOUNT, REGION = "123456789012", "eu-west-1"
# Resource "*" only where AWS has no resource-level permission; each such
# statement's reason is in its resource's Metadata (a test checks it is there).
RESOURCE_STAR_ALLOWED = {
    # Step Functions authorizes task-token calls by the token alone
    "states:SendTaskSuccess",
    # CloudWatch Logs' log-delivery actions, used by the state machine's logging
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
    "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
}
MODES = CONTACT_LIST_MODES
FUNCTIONS = app_functions()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return package.build("dev", out_dir=tmp_path_factory.mktemp("build") / "dev")


@pytest.fixture(scope="module")
def sam(built):
    return json.loads(built.read_text())


def resolved(template, mode="list-per-tenant", stage="dev", stripe="off", sender=None):
    """The template's values as CloudFormation would resolve them; resources as {Name.Attr}."""
    def physical(logical_id, attribute):
        return "{" + logical_id + ("." + attribute if attribute else "") + "}"

    parameters = {"Stage": stage, "ContactListMode": mode, "Stripe": stripe}
    if sender:
        parameters.update(sender.parameters())
    return Resolver(template, parameters, REGION, ACCOUNT, physical)


def role_statements(template, function, **parameters):
    logical = FUNCTIONS[function]
    role = template["Resources"][logical]["Properties"]["Role"]["Fn::GetAtt"][0]
    [policy] = resolved(template, **parameters).resolve(
        template["Resources"][role]["Properties"]["Policies"]
    )
    return policy["PolicyDocument"]["Statement"]


def listify(value):
    return value if isinstance(value, list) else [value]


# --- the package itself --------------------------------------------------------------
def test_the_package_is_one_json_template_with_its_zips(built, sam):
    assert built.name.endswith(".json") and built.parent.name == "dev"
    assert sorted(p.name for p in built.parent.iterdir()) == [
        "deployment.zip", "layer-deployment.zip", "template.json"
    ]
    assert sam["Resources"] and sam["Transform"] == "AWS::Serverless-2016-10-31"
    assert sam["Parameters"]["Stage"]["Default"] == "dev"


def test_cfn_lint_reports_no_error_on_the_packaged_template(built):
    # no rule is disabled: a warning or an error fails this test
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", str(built)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_zips_ship_bytecode_for_the_app_and_the_layer(built):
    with zipfile.ZipFile(built.parent / "deployment.zip") as app_zip:
        app_names = set(app_zip.namelist())
    with zipfile.ZipFile(built.parent / "layer-deployment.zip") as layer_zip:
        layer_names = set(layer_zip.namelist())

    assert "__pycache__/app.cpython-311.pyc" in app_names
    assert "chalicelib/__pycache__/tenants.cpython-311.pyc" in app_names
    sources = [n for n in layer_names if n.endswith(".py")]
    compiled = [n for n in layer_names if n.endswith(".cpython-311.pyc")]
    assert any("/stripe/__pycache__/" in n for n in compiled)
    assert len(compiled) >= 0.95 * len(sources)


def test_packaging_twice_gives_the_same_bytes(built, tmp_path):
    # an unchanged app must upload nothing new and change nothing in the stack
    again = package.build("dev", out_dir=tmp_path / "dev")
    for name in ("deployment.zip", "layer-deployment.zip", "template.json"):
        assert (again.parent / name).read_bytes() == (built.parent / name).read_bytes(), name


def test_an_unknown_stage_is_refused_with_a_clear_message(capsys):
    assert package.main(["--stage", "nope"]) == 1
    err = capsys.readouterr().err
    assert 'stage "nope" is not in .chalice/config.json' in err and "Traceback" not in err


# --- authorization and least privilege ----------------------------------------------------
PUBLIC_ROUTES = {"/config", "/signup", "/admin", "/assets/{name}"}
TENANT_ROUTES = {"/me", "/me/subscribers", "/me/subscribers/import", "/me/subscribers/{email}"}


def test_every_admin_route_requires_an_admin_of_the_stacks_admin_pool(sam):
    api = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    schemes = api["securityDefinitions"]
    for name, pool in (("admins", "AdminUserPool"), ("tenants", "UserPool")):
        assert schemes[name]["x-amazon-apigateway-authtype"] == "cognito_user_pools"
        assert schemes[name]["x-amazon-apigateway-authorizer"]["providerARNs"] == [
            {"Fn::GetAtt": [pool, "Arn"]}]
    routes = [(path, method, spec) for path, methods in api["paths"].items()
              for method, spec in methods.items() if method in ("get", "post", "put", "patch", "delete")]

    assert {path for path, _, _ in routes} >= {"/tenants", "/tenant/finalize", "/me"}
    for path, method, spec in routes:
        used = {name for requirement in spec.get("security", []) for name in requirement}
        if path in PUBLIC_ROUTES:
            assert not used, f"{method.upper()} {path} should be public"
        elif path in TENANT_ROUTES:
            assert used == {"tenants"}, f"{method.upper()} {path}"
        else:
            assert used == {"admins"}, f"{method.upper()} {path} is not admin-only"
    assert "sigv4" not in schemes  # admins are users of their pool, not IAM principals


def test_api_gateways_own_answers_carry_the_apis_headers(sam):
    # a 401 from an authorizer, a 403, a 429 or a 504 never reaches the function,
    # whose middleware gives every other answer these headers (chalicelib/api_headers.py)
    from chalicelib.api_headers import API_HEADERS

    api = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    answers = api["x-amazon-apigateway-gateway-responses"]

    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(answers)
    for kind, answer in answers.items():
        assert answer["responseParameters"] == {
            f"gatewayresponse.header.{name}": f"'{value}'" for name, value in API_HEADERS.items()
        }, kind


def test_a_path_no_route_matches_is_a_json_404_not_a_403(sam):
    # API Gateway's MISSING_AUTHENTICATION_TOKEN: no route for this method and path
    # (this API has no IAM-signed route, the type's other cause); the local
    # stack answers it from here too (scripts/local/gateway.py)
    api = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    unknown = api["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"]

    assert unknown["statusCode"] == "404"
    assert json.loads(unknown["responseTemplates"]["application/json"]) == {
        "Code": "NotFoundError", "Message": "No route answers this method and path."}
    assert "method.request" not in json.dumps(unknown)  # nothing of the request is repeated


def test_no_self_sign_up_for_admins(sam):
    pool = sam["Resources"]["AdminUserPool"]
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == "Retain"
    assert "LambdaConfig" not in pool["Properties"]  # no tenant onboarding for admins


def test_every_function_has_its_own_role_and_log_group(sam):
    functions = {n: r for n, r in sam["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}

    assert set(functions) == set(FUNCTIONS.values())
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    assert len(set(roles)) == len(functions)
    for logical, function in functions.items():
        name = resolved(sam).resolve(function["Properties"]["FunctionName"])
        group = resolved(sam).resolve(sam["Resources"][logical + "LogGroup"]["Properties"])
        assert group["LogGroupName"] == f"/aws/lambda/{name}"
        assert group["RetentionInDays"] == 30


def test_the_iam_check_reads_the_roles_the_package_deploys(sam):
    """Every functional stage and tests/test_iam.py check the functions' calls
    against template.json's roles: chalice package merges them unchanged, and
    adds no IAM of its own (no role, policy or SAM policy template)."""
    template = stack_template.load_template()
    iam_types = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}

    def iam_of(resources):
        return {name: spec for name, spec in resources.items() if spec.get("Type") in iam_types}

    assert iam_of(sam["Resources"]) == iam_of(template["Resources"])
    for logical in FUNCTIONS.values():
        packaged = sam["Resources"][logical]["Properties"]
        assert packaged["Role"] == template["Resources"][logical]["Properties"]["Role"], logical
        assert "Policies" not in packaged, logical


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stripe", ["on", "off"])
def test_no_policy_grants_every_action_or_a_needless_every_resource(sam, mode, stripe):
    documents = [s for f in FUNCTIONS for s in role_statements(sam, f, mode=mode, stripe=stripe)]
    machine_role = resolved(sam, mode=mode).resolve(
        sam["Resources"]["StateMachineRole"]["Properties"]["Policies"])
    documents += [s for p in machine_role for s in p["PolicyDocument"]["Statement"]]

    for statement in documents:
        for action in listify(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), statement
        if "*" in listify(statement["Resource"]):
            assert set(listify(statement["Action"])) <= RESOURCE_STAR_ALLOWED, statement


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stripe", ["on", "off"])
def test_every_resource_star_has_its_reason_beside_it(sam, mode, stripe):
    for logical, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        policies = resolved(sam, mode=mode, stripe=stripe).resolve(resource["Properties"]["Policies"])
        statements = [statement for policy in policies
                      for statement in policy["PolicyDocument"]["Statement"]]
        if any("*" in listify(statement["Resource"]) for statement in statements):
            assert "Resource *" in resource.get("Metadata", {}).get("Comment", ""), logical


@pytest.mark.parametrize("mode", MODES)
def test_policies_name_the_stages_own_resources(sam, mode):
    table = "{TenantTable.Arn}"
    assert role_statements(sam, "create_tenant_record", mode=mode)[0]["Resource"] == [table]
    [start] = [s for s in role_statements(sam, "post_confirmation") if s["Sid"] == "StartOnboarding"]
    # by its fixed name's ARN, not Ref: see PostConfirmationRole's Metadata
    assert start["Resource"] == [
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:tenant-onboarding-dev"]
    assert resolved(sam).resolve(sam["Resources"]["StateMachine"]["Properties"][
        "StateMachineName"]) == "tenant-onboarding-dev"
    [publish] = [s for s in role_statements(sam, "update_status_and_notify")
                 if s["Sid"] == "PublishOutcome"]
    assert publish["Resource"] == ["{EventBus.Arn}"]
    [logs] = [s for s in role_statements(sam, "await_decision") if s["Sid"] == "Logs"]
    assert logs["Resource"] == ["{AwaitDecisionLogGroup.Arn}"]
    [invoke] = resolved(sam).resolve(
        sam["Resources"]["StateMachineRole"]["Properties"]["Policies"])[0]["PolicyDocument"][
        "Statement"][:1]
    substitutions = sam["Resources"][stack_template.STATE_MACHINE]["Properties"][
        "DefinitionSubstitutions"]
    assert sorted(invoke["Resource"]) == sorted(
        "{" + value["Fn::GetAtt"][0] + ".Arn}" for value in substitutions.values())


def ses_resources(template, mode, stage="dev"):
    return [r for s in role_statements(template, "create_contact_list", mode=mode, stage=stage)
            if any(a.startswith("ses:") for a in s["Action"]) for r in s["Resource"]]


def test_the_contact_list_policy_grants_only_the_stage_modes_lists(sam):
    prefix = f"arn:aws:ses:{REGION}:{ACCOUNT}:contact-list/"
    assert ses_resources(sam, "list-per-tenant") == [prefix + "tenant-*"]
    assert ses_resources(sam, "topic-per-tenant") == [prefix + "tenants-dev"]


@pytest.mark.parametrize("mode", MODES)
def test_no_stage_may_touch_another_stages_shared_list(sam, mode):
    stages = ["dev", "local", "prod", "staging", "onboarding-dev"]
    for stage in stages:
        for pattern in ses_resources(sam, mode, stage):
            for other in stages:
                shared = f"arn:aws:ses:{REGION}:{ACCOUNT}:contact-list/tenants-{other}"
                if other != stage or mode == "list-per-tenant":
                    assert not iam_match(pattern, shared), (stage, mode, pattern, other)
    assert iam_match(ses_resources(sam, "list-per-tenant")[0],
                     f"arn:aws:ses:{REGION}:{ACCOUNT}:contact-list/tenant-74896a7c-0000")


def test_lock_writes_are_limited_to_the_lock_items(sam):
    lock_key = LeaseLock(None, "table", "tenants-dev")._key["pk"]["S"]
    statements = role_statements(sam, "create_contact_list", mode="topic-per-tenant")
    writes = [s for s in statements if {"dynamodb:PutItem", "dynamodb:DeleteItem"} & set(s["Action"])]

    [lock] = writes
    assert lock["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["lock#*"]}}
    assert iam_match("lock#*", lock_key)
    assert not any({"dynamodb:PutItem", "dynamodb:DeleteItem"} & set(s["Action"])
                   for s in role_statements(sam, "create_contact_list", mode="list-per-tenant"))


def test_the_stripe_key_is_readable_only_when_stripe_is_on(sam):
    def reads(stripe):
        return [s for s in role_statements(sam, "create_stripe_customer", stripe=stripe)
                if "secretsmanager:GetSecretValue" in s["Action"]]

    assert reads("off") == []
    [read] = reads("on")
    assert read["Resource"] == [
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenant-onboarding/dev/stripe-api-key-??????"
    ]


@pytest.mark.parametrize("mode", MODES)
def test_every_granted_action_is_one_the_app_calls(sam, mode):
    """No grant for a call nothing makes (Lambda's runtime writes the logs)."""
    source = (PROJECT_DIR / "app.py").read_text() + "".join(
        path.read_text() for path in sorted((PROJECT_DIR / "chalicelib").rglob("*.py")))
    for function in FUNCTIONS:
        for statement in role_statements(sam, function, mode=mode, stripe="on"):
            for action in statement["Action"]:
                if action.startswith("logs:"):
                    continue
                method = re.sub(r"(?<!^)(?=[A-Z])", "_", action.split(":")[1]).lower()
                assert f".{method}(" in source, f"{function}: {action} is never called"


# --- wiring, retention, secrets ---------------------------------------------------------------
def test_the_trigger_permission_names_the_user_pool_as_its_source(sam):
    permission = sam["Resources"]["PostConfirmationCognitoPermission"]["Properties"]

    assert permission["Principal"] == "cognito-idp.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    assert permission["FunctionName"] == {"Fn::GetAtt": ["PostConfirmation", "Arn"]}
    pool = sam["Resources"]["UserPool"]["Properties"]
    assert pool["LambdaConfig"] == {
        "PreSignUp": {"Fn::GetAtt": ["PreSignUp", "Arn"]},
        "PostConfirmation": {"Fn::GetAtt": ["PostConfirmation", "Arn"]},
    }
    pre = sam["Resources"]["PreSignUpCognitoPermission"]["Properties"]
    assert pre["SourceArn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    assert pre["FunctionName"] == {"Fn::GetAtt": ["PreSignUp", "Arn"]}


def test_the_data_survives_a_teardown_and_is_protected_beyond_dev(sam):
    for logical in ("TenantTable", "UserPool", "AdminUserPool"):
        resource = sam["Resources"][logical]
        assert resource["DeletionPolicy"] == "Retain", logical
        assert resource["UpdateReplacePolicy"] == "Retain", logical
    for stage, on in (("dev", False), ("prod", True)):
        r = resolved(sam, stage=stage)
        assert r.resolve(sam["Resources"]["TenantTable"]["Properties"]["DeletionProtectionEnabled"]) is on
        for pool in ("UserPool", "AdminUserPool"):
            assert r.resolve(sam["Resources"][pool]["Properties"]["DeletionProtection"]) == (
                "ACTIVE" if on else "INACTIVE")


def test_every_placeholder_of_the_definition_is_substituted(sam):
    machine = sam["Resources"][stack_template.STATE_MACHINE]["Properties"]

    assert machine["Definition"] == stack_template.load_definition()
    assert stack_template.placeholders(machine["Definition"]) == set(machine["DefinitionSubstitutions"])
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_functions_get_their_settings_from_the_stages_resources(sam):
    env = resolved(sam).resolve(sam["Globals"]["Function"]["Environment"]["Variables"])

    assert env["TENANT_TABLE_NAME"] == "{TenantTable}"
    assert env["EVENT_BUS_NAME"] == "{EventBus}"
    assert env["STRIPE_SECRET_ID"] == ""
    assert resolved(sam, stripe="on").resolve(
        sam["Globals"]["Function"]["Environment"]["Variables"])["STRIPE_SECRET_ID"] == (
        "tenant-onboarding/dev/stripe-api-key")
    for function in ("APIHandler", "Reconcile"):
        variables = sam["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["STATE_MACHINE_ARN"] == {"Ref": "StateMachine"}
    trigger = sam["Resources"]["PostConfirmation"]["Properties"]["Environment"]["Variables"]
    assert resolved(sam).resolve(trigger["STATE_MACHINE_ARN"]) == (
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:tenant-onboarding-dev")
    mode = sam["Parameters"]["ContactListMode"]["Default"]
    for logical in FUNCTIONS.values():
        variables = sam["Resources"][logical]["Properties"]["Environment"]["Variables"]
        assert variables.get("CONTACT_LIST_MODE", mode) == mode, logical


def test_the_user_pool_signs_in_by_email_case_insensitively_with_name_required(sam):
    pool = sam["Resources"]["UserPool"]["Properties"]

    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AutoVerifiedAttributes"] == ["email"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert {a["Name"] for a in pool["Schema"] if a["Required"]} == {"email", "name"}
    client = sam["Resources"]["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False


ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
REGIONAL_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z]{2}-[a-z]+-[0-9]")


@pytest.mark.parametrize("path", ["template.json", "statemachine.json", ".chalice/config.json"])
def test_no_committed_file_holds_an_account_id_or_a_regional_arn(path):
    text = (PROJECT_DIR / path).read_text()

    assert not ACCOUNT_ID.search(text), ACCOUNT_ID.search(text)
    assert not REGIONAL_ARN.search(text), REGIONAL_ARN.search(text)


def test_the_stripe_key_is_nowhere_in_the_template(sam):
    text = json.dumps(sam)

    assert "sk_test" not in text and "sk_live" not in text
    assert not [r for r in sam["Resources"].values() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert set(sam["Parameters"]) == {"Stage", "ContactListMode", "Stripe", "SesSenderAddress",
                                      "SesSenderIdentityArn"}
    assert sam["Parameters"]["Stripe"]["AllowedValues"] == ["on", "off"]
    for output in sam.get("Outputs", {}).values():
        assert "stripe" not in json.dumps(output).lower()


# --- names, retention, mail ------------------------------------------------------------
def test_the_stage_pattern_admits_exactly_the_names_whose_functions_fit_lambdas_limit(sam):
    pattern = sam["Parameters"]["Stage"]["AllowedPattern"]
    longest = stack_template.longest_stage_name()

    for length in range(1, 30):
        stage = "s" * length
        fits = all(len(resolved(sam, stage=stage).resolve(
            sam["Resources"][logical]["Properties"]["FunctionName"])) <= 64
            for logical in FUNCTIONS.values())
        assert bool(re.fullmatch(pattern, stage)) is fits is (length <= longest), length


def test_the_package_refuses_a_stage_whose_function_names_lambda_would_refuse(capsys):
    assert package.main(["--stage", "s" * (stack_template.longest_stage_name() + 1)]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over Lambda's limit of 64" in err and "Traceback" not in err


def test_every_log_group_and_layer_says_what_becomes_of_it(sam):
    groups = {n: r for n, r in sam["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    [layer] = [r for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"]

    assert set(groups) >= {logical + "LogGroup" for logical in FUNCTIONS.values()}
    for name, group in groups.items():
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Delete", name
    # SAM makes RetentionPolicy the layer version's DeletionPolicy: old versions go after an update
    assert layer["Properties"]["RetentionPolicy"] == layer["UpdateReplacePolicy"] == "Delete"


def test_log_groups_chalice_adds_get_the_same_policy_and_a_declared_one_is_kept():
    template = {"Resources": {
        "ByChalice": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
        "Kept": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {}},
        "Layer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "x"}},
    }}

    stack_template.apply_deletion_policies(template)

    added, kept = template["Resources"]["ByChalice"], template["Resources"]["Kept"]
    assert added["DeletionPolicy"] == added["UpdateReplacePolicy"] == "Delete"
    assert kept["DeletionPolicy"] == kept["UpdateReplacePolicy"] == "Retain"
    assert template["Resources"]["Layer"]["Properties"]["RetentionPolicy"] == "Delete"


SENDER = stack_template.SesSender(
    "no-reply@mail.example.com", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com")


def sam_pool(template, logical):
    return template["Resources"][logical]["Properties"]


def invitation(template, sender):
    pool = resolved(template, sender=sender).resolve(sam_pool(template, "AdminUserPool"))
    return pool["AdminCreateUserConfig"]["InviteMessageTemplate"]


@pytest.mark.parametrize("sender", [None, SENDER], ids=["cognito-mail", "ses-sender"])
def test_the_admin_invitation_is_one_cognito_accepts_in_either_mail_mode(sam, sender):
    messages = invitation(sam, sender)

    # Cognito: an invitation's messages name {username} and {####}; the email's subject
    # and body only with EmailSendingAccount DEVELOPER; an SMSMessage even without SMS
    assert {"{username}", "{####}"} <= set(re.findall(r"\{username\}|\{####\}", messages["SMSMessage"]))
    assert 6 <= len(messages["SMSMessage"]) <= 140
    if sender is None:
        assert set(messages) == {"SMSMessage"}
    else:
        assert "{username}" in messages["EmailMessage"] and "{####}" in messages["EmailMessage"]
        assert 6 <= len(messages["EmailMessage"]) <= 20000
        assert 1 <= len(messages["EmailSubject"]) <= 140


def test_without_a_sender_both_pools_use_cognitos_own_mail(sam):
    for logical in ("UserPool", "AdminUserPool"):
        pool = resolved(sam).resolve(sam_pool(sam, logical))
        assert pool["EmailConfiguration"] == {"EmailSendingAccount": "COGNITO_DEFAULT"}, logical


def test_with_a_sender_both_pools_send_through_its_ses_identity(sam):
    for logical in ("UserPool", "AdminUserPool"):
        pool = resolved(sam, sender=SENDER).resolve(sam_pool(sam, logical))
        assert pool["EmailConfiguration"] == {
            "EmailSendingAccount": "DEVELOPER", "SourceArn": SENDER.identity_arn,
            "From": SENDER.address}, logical


def test_the_pages_promise_an_outcome_mail_only_on_a_stage_that_sends_one(sam):
    # the sign-up page tells a disabled tenant to look for the mail only when /config says so
    api = sam["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert resolved(sam).resolve(api["OUTCOME_MAIL"]) == "off"
    assert resolved(sam, sender=SENDER).resolve(api["OUTCOME_MAIL"]) == "on"


def test_the_package_takes_the_stages_sender_from_its_configuration(sam, tmp_path):
    (tmp_path / ".chalice").mkdir()
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["ses_sender"] = {"address": SENDER.address,
                                             "identity_arn": SENDER.identity_arn}
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    for path in stack_template.DEFINITIONS.values():
        (tmp_path / path).write_text((PROJECT_DIR / path).read_text())
    template = json.loads(json.dumps(sam))

    package.finish_template(template, "dev", "subscriber-store", tmp_path)

    parameters = template["Parameters"]
    assert parameters["SesSenderAddress"]["Default"] == SENDER.address
    assert parameters["SesSenderIdentityArn"]["Default"] == SENDER.identity_arn
    assert sam["Parameters"]["SesSenderAddress"]["Default"] == ""  # the committed stage has none
    for name in ("SesSenderAddress", "SesSenderIdentityArn"):
        assert re.fullmatch(parameters[name]["AllowedPattern"], parameters[name]["Default"])
        assert re.fullmatch(parameters[name]["AllowedPattern"], "")


def test_the_docs_call_the_reconcile_schedule_what_chalice_declares(sam):
    # SAM's Schedule event is an EventBridge rule (AWS::Events::Rule); ScheduleV2 would be
    # EventBridge Scheduler, which the stack does not use
    events = sam["Resources"]["Reconcile"]["Properties"]["Events"]
    assert {event["Type"] for event in events.values()} == {"Schedule"}
    for path in [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]:
        assert "Scheduler" not in path.read_text(), path.name


def test_every_function_gets_the_memory_its_measurements_chose(sam):
    """make bench's memory sweep chose each size (docs/configuration.md, Function
    sizes); the package must carry it, or every function runs at Lambda's 128 MB
    (1/14 of a core), where the post-confirmation trigger takes most of Cognito's 5 s."""
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    chosen = {name: spec["lambda_memory_size"]
              for name, spec in config["lambda_functions"].items()}
    packaged = {}  # function name -> MemorySize
    for spec in sam["Resources"].values():
        if spec["Type"] == "AWS::Serverless::Function":
            name = spec["Properties"]["FunctionName"]["Fn::Sub"].rsplit("-", 1)[-1]
            packaged[name] = spec["Properties"].get("MemorySize")

    assert set(chosen) == set(app_functions())  # each function has its size
    assert packaged == chosen
    assert min(chosen["post_confirmation"], chosen["pre_sign_up"]) >= 256


# --- admin notifications and alarms (issue 18) ------------------------------------------------
NOTIFIED = {APPROVAL_REQUESTED, APPROVAL_REMINDER, ONBOARDING_FAILED, OFFBOARDING_FAILED}
RULES = ("AdminApprovalsRule", "AdminFailuresRule")
TOPIC_REF = {"Ref": "AdminNotificationsTopic"}
PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def alarms_of(template):
    return {logical: spec["Properties"] for logical, spec in template["Resources"].items()
            if spec["Type"] == "AWS::CloudWatch::Alarm"}


def test_the_admin_notifications_topic_is_named_after_the_stage(sam):
    topic = resolved(sam).resolve(sam["Resources"]["AdminNotificationsTopic"]["Properties"])

    assert topic["TopicName"] == "tenant-onboarding-dev-admin-notifications"
    assert sam["Outputs"]["AdminNotificationsTopicArn"]["Value"] == TOPIC_REF
    assert stack_template.OUTPUT_KEYS["AdminNotificationsTopicArn"] == "adminNotificationsTopicArn"


def test_the_rules_send_exactly_the_events_an_admin_acts_on_from_the_stages_bus(sam):
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    source = config["environment_variables"]["EVENT_SOURCE"]
    sent = set()
    for logical in RULES:
        rule = sam["Resources"][logical]["Properties"]
        assert rule["EventBusName"] == {"Ref": "EventBus"} and rule["State"] == "ENABLED"
        assert rule["EventPattern"]["source"] == [source]
        assert set(rule["EventPattern"]) == {"source", "detail-type"}
        [target] = rule["Targets"]
        assert target["Arn"] == TOPIC_REF
        sent |= set(rule["EventPattern"]["detail-type"])

    assert sent == NOTIFIED


@pytest.mark.parametrize("logical, field", [("AdminApprovalsRule", "decideBy"),
                                            ("AdminFailuresRule", "reason")])
def test_each_notification_is_text_a_person_reads_with_a_working_console_link(sam, logical, field):
    rule = sam["Resources"][logical]["Properties"]
    transformer = rule["Targets"][0]["InputTransformer"]
    text = resolved(sam).resolve(transformer["InputTemplate"])
    paths = transformer["InputPathsMap"]

    assert not text.lstrip().startswith(("{", "[", '"'))  # plain text, not JSON
    used = set(PLACEHOLDER.findall(text))
    assert used == set(paths)  # every variable is mapped, every mapping used
    assert {"name", "email", "tenantId", field} <= used
    # every detail field it reads is one each matched event always carries
    for detail_type in rule["EventPattern"]["detail-type"]:
        required = CATALOGUE[detail_type].required
        for path in paths.values():
            assert path == "$.detail-type" or path.removeprefix("$.detail.") in required, path
    link = f"https://{{RestAPI}}.execute-api.{REGION}.amazonaws.com/api/admin#<tenantId>"
    assert link in text.splitlines()
    assert "(stage dev)" in text


def test_the_console_link_is_the_api_chalice_packages(sam):
    """The link is written as chalice package writes the API's own URL (EndpointURL)."""
    endpoint = sam["Outputs"]["EndpointURL"]["Value"]["Fn::Sub"]

    assert endpoint.rstrip("/") == stack_template.DEPLOYED_API_URL["Fn::Sub"]
    assert sam["Resources"]["RestAPI"]["Type"] == "AWS::Serverless::Api"
    for logical in RULES:
        template = sam["Resources"][logical]["Properties"]["Targets"][0]["InputTransformer"][
            "InputTemplate"]["Fn::Sub"]
        assert template[1] == {"ApiUrl": stack_template.DEPLOYED_API_URL}


def test_only_the_stages_rules_and_alarms_may_publish_to_the_topic(sam):
    policy = sam["Resources"]["AdminNotificationsTopicPolicy"]["Properties"]
    assert policy["Topics"] == [TOPIC_REF]
    statements = resolved(sam).resolve(policy["PolicyDocument"])["Statement"]
    by_service = {s["Principal"]["Service"]: s for s in statements}

    assert set(by_service) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    for statement in statements:
        assert statement["Effect"] == "Allow" and statement["Action"] == "sns:Publish"
        assert statement["Resource"] == "{AdminNotificationsTopic}"
    assert sorted(by_service["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]) == \
        sorted(f"{{{rule}.Arn}}" for rule in RULES)
    # the stage's own alarms by ARN: a prefix would admit stage dev-eu's into dev's topic
    alarms = by_service["cloudwatch.amazonaws.com"]["Condition"]
    assert set(alarms) == {"ArnEquals"}
    assert sorted(alarms["ArnEquals"]["aws:SourceArn"]) == sorted(
        f"{{{logical_id}.Arn}}" for logical_id in alarms_of(sam))
    for alarm in alarms_of(sam).values():
        name = resolved(sam).resolve(alarm["AlarmName"])
        assert iam_match("tenant-onboarding-dev-*", name) and len(name) <= 255


def assert_alarms(found, namespace, metrics, dimensions, period=300, missing_data="notBreaching"):
    for metric in metrics:
        matching = [a for a in found.values() if a["Namespace"] == namespace
                    and a["MetricName"] == metric and a.get("Dimensions", []) == dimensions]
        assert len(matching) == 1, (namespace, metric, dimensions)
        [alarm] = matching
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["TreatMissingData"] == missing_data and alarm["Statistic"] == "Sum"
        assert alarm["Period"] == period
        assert alarm["AlarmActions"] == alarm["OKActions"] == [TOPIC_REF]


def test_every_function_has_an_errors_and_a_throttles_alarm(sam):
    found = alarms_of(sam)
    functions = {logical for logical, spec in sam["Resources"].items()
                 if spec["Type"] == "AWS::Serverless::Function"}

    assert functions == set(FUNCTIONS.values())
    for logical in functions:
        assert_alarms(found, "AWS/Lambda", ["Errors", "Throttles"],
                      [{"Name": "FunctionName", "Value": {"Ref": logical}}])


def test_every_state_machine_alarms_on_failed_timed_out_and_aborted_executions(sam):
    found = alarms_of(sam)
    machines = [logical for logical, spec in sam["Resources"].items()
                if spec["Type"] == "AWS::StepFunctions::StateMachine"]

    assert sorted(machines) == sorted(stack_template.DEFINITIONS)
    for logical in machines:
        assert_alarms(found, "AWS/States",
                      ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"],
                      [{"Name": "StateMachineArn", "Value": {"Ref": logical}}])


def test_the_apis_5xx_answers_are_alarmed_by_the_apis_own_name_and_stage(sam):
    api = resolved(sam).resolve(sam["Resources"]["RestAPI"]["Properties"])
    [alarm] = [a for a in alarms_of(sam).values() if a["MetricName"] == "5XXError"]

    assert api["Name"] == "tenant-onboarding-dev"  # one name per stage: the metric is the stage's
    assert resolved(sam).resolve(alarm["Dimensions"]) == [
        {"Name": "ApiName", "Value": api["Name"]}, {"Name": "Stage", "Value": api["StageName"]}]
    assert_alarms(alarms_of(sam), "AWS/ApiGateway", ["5XXError"], alarm["Dimensions"])


def test_the_reconcilers_findings_are_alarmed_in_the_stages_namespace(sam):
    found = {logical: {**alarm, "Namespace": resolved(sam).resolve(alarm["Namespace"])}
             for logical, alarm in alarms_of(sam).items()}

    # one sweep a period, zeros included: a lasting finding stays in alarm until a sweep finds none
    assert "Rate(15, unit=Rate.MINUTES), name=\"reconcile\"" in (PROJECT_DIR / "app.py").read_text()
    assert_alarms(found, metrics_namespace("dev"), sorted(RECONCILER_METRICS), [],
                  period=900, missing_data="missing")
    assert {STUCK_TENANTS, OUTCOME_EVENTS_DUE, RELEASE_FAILURES} <= set(RECONCILER_METRICS)


def test_a_new_function_or_state_machine_gets_its_alarms_without_a_hand_edit():
    made = stage_alarms.alarms({"send_invoice": "SendInvoice"}, ["BillingStateMachine"], "api")

    assert {"SendInvoiceErrorsAlarm", "SendInvoiceThrottlesAlarm",
            "BillingStateMachineExecutionsFailedAlarm"} <= set(made)


def test_the_readme_says_what_each_alarm_means(sam):
    readme = (PROJECT_DIR / "README.md").read_text()
    operations = readme.split("## Operations", 1)[1].split("\n## ", 1)[0]

    for metric in {a["MetricName"] for a in alarms_of(sam).values()}:
        assert f"`{metric}`" in operations, metric
