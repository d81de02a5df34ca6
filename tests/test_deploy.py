"""The deploy script against a moto server started here: real boto3 calls
over HTTP to a local endpoint. `chalice deploy` itself is replaced by a
fixture that writes .chalice/deployed/STAGE.json (moto's API Gateway cannot
import Chalice's API) and creates the functions it names; everything after
it runs for real."""
import io
import json
import shutil

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from scripts.deploy import deploy, policies
from scripts.deploy import template as provisioning
from scripts.deploy.template import PROJECT_DIR, StageNames
from tests.conftest import free_port

REGION = "us-east-1"
STRIPE_KEY = "sk_test_do_not_print_me_123"
OTHER_STRIPE_KEY = "sk_live_nor_me_456"


@pytest.fixture(autouse=True)
def no_deploy_key(monkeypatch):
    monkeypatch.delenv(deploy.STRIPE_KEY_VARIABLE, raising=False)


@pytest.fixture
def aws(monkeypatch):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto's state lives in this process, shared by every server it starts
    requests.post(f"http://127.0.0.1:{port}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    try:
        yield boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
    finally:
        server.stop()


@pytest.fixture
def project(tmp_path):
    """A copy of what the deploy script reads and writes."""
    (tmp_path / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    shutil.copy(PROJECT_DIR / "statemachine.json", tmp_path / "statemachine.json")
    config = json.loads((tmp_path / ".chalice" / "config.json").read_text())
    config["stages"]["prod"] = json.loads(json.dumps(config["stages"]["dev"]))
    config["stages"]["prod"]["environment_variables"]["CONTACT_LIST_MODE"] = "topic-per-tenant"
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    return tmp_path


class FakeChalice:
    """Stands in for `chalice deploy`: writes deployed/STAGE.json and creates the functions."""

    def __init__(self, session, project, stage):
        self.session, self.project, self.stage = session, project, stage
        self.calls = []

    def __call__(self, args):
        self.calls.append(args)
        names = StageNames(self.stage)
        if args[0] == "delete":
            (self.project / ".chalice" / "deployed" / f"{self.stage}.json").unlink()
            return
        iam = self.session.client("iam")
        try:
            role = iam.get_role(RoleName="fake-lambda-role")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(
                RoleName="fake-lambda-role", AssumeRolePolicyDocument="{}"
            )["Role"]["Arn"]
        lam = self.session.client("lambda")
        resources = []
        for name in provisioning.TASK_FUNCTIONS + (provisioning.TRIGGER_FUNCTION, "api_handler"):
            try:
                arn = lam.get_function(FunctionName=names.function(name))["Configuration"]["FunctionArn"]
            except lam.exceptions.ResourceNotFoundException:
                arn = lam.create_function(
                    FunctionName=names.function(name), Runtime="python3.11", Role=role,
                    Handler="app.app", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
                )["FunctionArn"]
            resources.append({"name": name, "resource_type": "lambda_function", "lambda_arn": arn})
        resources.append({"name": "rest_api", "resource_type": "rest_api",
                          "rest_api_id": "abc123",
                          "rest_api_url": "https://abc123.execute-api.us-east-1.amazonaws.com/api/"})
        deployed = self.project / ".chalice" / "deployed"
        deployed.mkdir(exist_ok=True)
        (deployed / f"{self.stage}.json").write_text(
            json.dumps({"resources": resources, "schema_version": "2.0", "backend": "api"})
        )


def run(aws, project, stage="dev", dry_run=False, stripe_key=None, delete=None, chalice=None,
        replace_stripe_key=False):
    said = []
    deployer = deploy.Deployer(
        aws, stage, project_dir=project, dry_run=dry_run, stripe_key=stripe_key,
        chalice=chalice or FakeChalice(aws, project, stage), say=said.append,
        replace_stripe_key=replace_stripe_key,
    )
    if delete is None:
        deployer.deploy()
    else:
        deployer.delete(delete_data=delete)
    return deployer, "\n".join(said)


def actions(deployer):
    return {(o.kind, o.action) for o in deployer.outcomes}


def test_first_run_creates_every_resource(aws, project):
    deployer, said = run(aws, project)

    created = {kind for kind, action in actions(deployer) if action == deploy.CREATE}
    assert created == {
        "Chalice app", "DynamoDB table", "EventBridge bus", "IAM role",
        "CloudWatch log group", "Step Functions machine", "Cognito user pool",
        "Cognito app client", "Lambda permission",
    }
    names = StageNames("dev")
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName=names.table)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [provisioning.STATUS_INDEX]
    # the listing's attributes only: never the task token (pendingDecision)
    assert table["GlobalSecondaryIndexes"][0]["Projection"] == {
        "ProjectionType": "INCLUDE", "NonKeyAttributes": ["name", "email", "updatedAt", "decideBy"],
    }
    backups = ddb.describe_continuous_backups(TableName=names.table)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert aws.client("events").describe_event_bus(Name=names.event_bus)["Name"] == names.event_bus
    outputs = json.loads((project / ".chalice" / "outputs-dev.json").read_text())
    assert outputs["apiUrl"].startswith("https://abc123.execute-api")
    assert outputs["userPoolId"] and outputs["userPoolClientId"]
    assert "WARNING: contact-list mode list-per-tenant" in said


def test_registered_definition_is_statemachine_json_with_every_placeholder_filled(aws, project):
    run(aws, project)
    deployed = json.loads((project / ".chalice" / "deployed" / "dev.json").read_text())
    arns = {r["name"]: r["lambda_arn"] for r in deployed["resources"] if "lambda_arn" in r}
    account = aws.client("sts").get_caller_identity()["Account"]
    sfn = aws.client("stepfunctions")

    machine = sfn.describe_state_machine(
        stateMachineArn=StageNames("dev").state_machine_arn(REGION, account)
    )

    assert "${" not in machine["definition"]
    expected = provisioning.render_definition(
        (project / "statemachine.json").read_text(),
        {n: arns[n] for n in provisioning.TASK_FUNCTIONS},
    )
    assert json.loads(machine["definition"]) == json.loads(expected)
    assert machine["type"] == "STANDARD"
    assert machine["loggingConfiguration"]["level"] == "ERROR"
    assert machine["loggingConfiguration"]["includeExecutionData"] is False
    role = aws.client("iam").get_role_policy(
        RoleName=StageNames("dev").state_machine_role, PolicyName=provisioning.STATE_MACHINE_POLICY
    )["PolicyDocument"]
    invoke = [s for s in role["Statement"] if s["Action"] == "lambda:InvokeFunction"]
    assert invoke[0]["Resource"] == sorted(arns[n] for n in provisioning.TASK_FUNCTIONS)


def test_user_pool_has_the_required_attributes_and_the_trigger_wired(aws, project):
    run(aws, project)
    cognito = aws.client("cognito-idp")
    outputs = json.loads((project / ".chalice" / "outputs-dev.json").read_text())

    pool = cognito.describe_user_pool(UserPoolId=outputs["userPoolId"])["UserPool"]
    client = cognito.describe_user_pool_client(
        UserPoolId=outputs["userPoolId"], ClientId=outputs["userPoolClientId"]
    )["UserPoolClient"]

    required = {a["Name"] for a in pool["SchemaAttributes"] if a.get("Required")}
    assert {"email", "name"} <= required
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["AutoVerifiedAttributes"] == ["email"]
    trigger = pool["LambdaConfig"]["PostConfirmation"]
    assert trigger.endswith(":function:tenant-onboarding-dev-post_confirmation")
    assert "ClientSecret" not in client
    policy = json.loads(aws.client("lambda").get_policy(FunctionName=trigger)["Policy"])
    [statement] = [s for s in policy["Statement"] if s["Sid"] == deploy.COGNITO_PERMISSION_ID]
    assert statement["Principal"] == {"Service": "cognito-idp.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(
        f"userpool/{outputs['userPoolId']}"
    )


def test_second_run_changes_nothing_and_says_so(aws, project, capsys):
    chalice = FakeChalice(aws, project, "dev")
    run(aws, project, chalice=chalice)
    sfn = aws.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    before = sfn.describe_state_machine(stateMachineArn=arn)

    deployer, _ = run(aws, project, chalice=chalice)

    assert not deployer.changed
    assert {action for _, action in actions(deployer)} <= {deploy.UNCHANGED, deploy.SKIP}
    assert chalice.calls == [["deploy", "--stage", "dev"]]  # not deployed again
    after = sfn.describe_state_machine(stateMachineArn=arn)
    assert after["definition"] == before["definition"]
    assert after.get("updateDate") == before.get("updateDate")


def test_a_changed_definition_updates_the_state_machine_in_place(aws, project):
    run(aws, project)
    definition = json.loads((project / "statemachine.json").read_text())
    definition["States"]["Wait For Callback"]["TimeoutSeconds"] = 3600
    (project / "statemachine.json").write_text(json.dumps(definition))

    deployer, _ = run(aws, project)

    changed = {(k, a) for k, a in actions(deployer) if a != deploy.UNCHANGED and a != deploy.SKIP}
    assert changed == {("Step Functions machine", deploy.UPDATE)}
    sfn = aws.client("stepfunctions")
    arn = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    registered = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    assert registered["States"]["Wait For Callback"]["TimeoutSeconds"] == 3600


def test_dry_run_prints_the_plan_and_changes_nothing(aws, project):
    deployer, said = run(aws, project, dry_run=True)

    assert ("DynamoDB table", deploy.CREATE) in actions(deployer)
    assert "create     DynamoDB table" in said
    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert aws.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert not (project / ".chalice" / "deployed").exists()
    assert not (project / ".chalice" / "outputs-dev.json").exists()


def test_dry_run_after_a_deploy_reports_every_resource_unchanged(aws, project):
    chalice = FakeChalice(aws, project, "dev")
    run(aws, project, chalice=chalice)

    deployer, said = run(aws, project, dry_run=True, chalice=chalice)

    assert not deployer.changed
    assert "unchanged  Step Functions machine" in said


def test_delete_removes_what_it_created_but_keeps_data_unless_asked(aws, project):
    chalice = FakeChalice(aws, project, "dev")
    run(aws, project, chalice=chalice)
    cognito = aws.client("cognito-idp")

    deployer, said = run(aws, project, delete=False, chalice=chalice)

    assert aws.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert StageNames("dev").event_bus not in [
        b["Name"] for b in aws.client("events").list_event_buses()["EventBuses"]
    ]
    assert chalice.calls[-1] == ["delete", "--stage", "dev"]
    assert aws.client("dynamodb").list_tables()["TableNames"] == [StageNames("dev").table]
    # the user pool holds every tenant's login: data, kept
    assert [p["Name"] for p in cognito.list_user_pools(MaxResults=10)["UserPools"]] == [
        StageNames("dev").user_pool
    ]
    assert ("Cognito user pool", deploy.DELETE) not in actions(deployer)
    assert any(o.kind == "kept (data)" and o.name.startswith(
        f"Cognito user pool {StageNames('dev').user_pool} (every tenant's login")
        for o in deployer.outcomes)
    assert "pass --delete-data to delete" in said

    deployer, _ = run(aws, project, delete=True, chalice=chalice)
    assert ("Cognito user pool", deploy.DELETE) in actions(deployer)
    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert cognito.list_user_pools(MaxResults=10)["UserPools"] == []


def _refuse_deleting_protected_pools(aws):
    """moto deletes a pool whatever its DeletionProtection; AWS refuses."""
    probe = aws.client("cognito-idp")

    def refuse(params, **_):
        pool = probe.describe_user_pool(UserPoolId=params["UserPoolId"])["UserPool"]
        if pool.get("DeletionProtection") == "ACTIVE":
            raise ClientError(
                {"Error": {"Code": "InvalidParameterException",
                           "Message": "Deletion protection is active"}},
                "DeleteUserPool",
            )

    aws.events.register("provide-client-params.cognito-idp.DeleteUserPool", refuse)


def test_other_stages_user_pool_is_protected_until_delete_data(aws, project):
    _refuse_deleting_protected_pools(aws)
    chalice = FakeChalice(aws, project, "prod")
    deployer, said = run(aws, project, stage="prod", chalice=chalice)
    cognito = aws.client("cognito-idp")
    [pool] = cognito.list_user_pools(MaxResults=10)["UserPools"]

    assert cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"][
        "DeletionProtection"] == "ACTIVE"
    assert "deletion protection on" in said

    run(aws, project, stage="prod", delete=False, chalice=chalice)
    assert cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"][
        "DeletionProtection"] == "ACTIVE"

    deployer, said = run(aws, project, stage="prod", delete=True, chalice=chalice)
    assert cognito.list_user_pools(MaxResults=10)["UserPools"] == []
    assert "deletion protection turned off first" in said


def test_dev_user_pool_has_no_deletion_protection(aws, project):
    run(aws, project)
    cognito = aws.client("cognito-idp")
    [pool] = cognito.list_user_pools(MaxResults=10)["UserPools"]
    assert cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"][
        "DeletionProtection"] == "INACTIVE"


def test_an_unprotected_pool_of_another_stage_gets_protection_on_the_next_deploy(aws, project):
    chalice = FakeChalice(aws, project, "prod")
    run(aws, project, stage="prod", chalice=chalice)
    cognito = aws.client("cognito-idp")
    [pool] = cognito.list_user_pools(MaxResults=10)["UserPools"]
    provisioning.set_user_pool_deletion_protection(cognito, pool["Id"], active=False)

    deployer, said = run(aws, project, stage="prod", chalice=chalice)

    assert ("Cognito user pool", deploy.UPDATE) in actions(deployer)
    assert cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"][
        "DeletionProtection"] == "ACTIVE"


def test_updating_the_trigger_keeps_the_pool_settings_we_do_not_manage(aws, project):
    chalice = FakeChalice(aws, project, "dev")
    run(aws, project, chalice=chalice)
    cognito = aws.client("cognito-idp")
    [summary] = cognito.list_user_pools(MaxResults=10)["UserPools"]
    pool = cognito.describe_user_pool(UserPoolId=summary["Id"])["UserPool"]
    ours = pool["LambdaConfig"]["PostConfirmation"]
    pre_sign_up = "arn:aws:lambda:us-east-1:123456789012:function:someone-elses-pre-sign-up"
    email = {"EmailSendingAccount": "COGNITO_DEFAULT", "ReplyToEmailAddress": "help@example.com"}
    # someone wires another trigger and an email setting, and our trigger drifts
    cognito.update_user_pool(
        UserPoolId=summary["Id"],
        **{k: pool[k] for k in ("Policies", "AutoVerifiedAttributes", "AccountRecoverySetting")},
        LambdaConfig={"PostConfirmation": ours + "-old", "PreSignUp": pre_sign_up},
        EmailConfiguration=email,
        UserPoolTags={**pool["UserPoolTags"], "owner": "team-a"},
    )

    deployer, said = run(aws, project, chalice=chalice)

    assert "update     Cognito user pool" in said and "post-confirmation trigger" in said
    after = cognito.describe_user_pool(UserPoolId=summary["Id"])["UserPool"]
    assert after["LambdaConfig"] == {"PostConfirmation": ours, "PreSignUp": pre_sign_up}
    assert after["EmailConfiguration"] == email
    assert after["UserPoolTags"] == {"app": "tenant-onboarding", "stage": "dev", "owner": "team-a"}
    assert after["Policies"]["PasswordPolicy"]["MinimumLength"] == 10
    assert after["AutoVerifiedAttributes"] == ["email"]


def test_update_user_pool_passes_back_every_setting_update_user_pool_takes():
    """Against botocore's model of the API: what DescribeUserPool returns goes
    back to UpdateUserPool unchanged, except what we manage and the deprecated
    fields Cognito refuses."""
    cognito = boto3.client("cognito-idp", region_name=REGION)
    names = StageNames("prod")
    trigger = names.function_arn("post_confirmation", REGION, "123456789012")
    pool = {
        "Id": "us-east-1_abc", "Name": names.user_pool, "Arn": "arn:aws:cognito-idp:x",
        "Status": "Enabled", "EstimatedNumberOfUsers": 3, "UsernameAttributes": ["email"],
        "SchemaAttributes": [{"Name": "email", "AttributeDataType": "String"}],
        "Policies": {
            "PasswordPolicy": {"MinimumLength": 8, "RequireSymbols": True,
                               "PasswordHistorySize": 4},
            "SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD"]},
        },
        "DeletionProtection": "INACTIVE",
        "LambdaConfig": {"PostConfirmation": f"{trigger}-old", "PreSignUp": f"{trigger}-pre",
                         "CustomMessage": f"{trigger}-msg"},
        "AutoVerifiedAttributes": ["email"],
        "EmailVerificationMessage": "Code {####}", "EmailVerificationSubject": "Code",
        "SmsVerificationMessage": "Code {####}",
        "VerificationMessageTemplate": {"EmailMessage": "Code {####}", "EmailSubject": "Code",
                                        "SmsMessage": "Code {####}",
                                        "DefaultEmailOption": "CONFIRM_WITH_CODE"},
        "SmsAuthenticationMessage": "Auth {####}",
        "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": ["email"]},
        "MfaConfiguration": "OPTIONAL",
        "DeviceConfiguration": {"ChallengeRequiredOnNewDevice": True},
        "EmailConfiguration": {"EmailSendingAccount": "DEVELOPER",
                               "SourceArn": "arn:aws:ses:us-east-1:1:identity/example.com"},
        "SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::1:role/sms", "ExternalId": "x"},
        "UserPoolTags": {"cost-centre": "42"},
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True,
                                  "UnusedAccountValidityDays": 7},
        "UserPoolAddOns": {"AdvancedSecurityMode": "AUDIT"},
        "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "admin_only", "Priority": 1}]},
        "UserPoolTier": "ESSENTIALS",
    }
    expected = {
        "UserPoolId": pool["Id"],
        "Policies": {
            "PasswordPolicy": {"MinimumLength": 10, "RequireUppercase": True,
                               "RequireLowercase": True, "RequireNumbers": True,
                               "RequireSymbols": False, "TemporaryPasswordValidityDays": 7,
                               "PasswordHistorySize": 4},
            "SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD"]},
        },
        "DeletionProtection": "ACTIVE",
        "LambdaConfig": {"PostConfirmation": trigger, "PreSignUp": f"{trigger}-pre",
                         "CustomMessage": f"{trigger}-msg"},
        "AutoVerifiedAttributes": ["email"],
        "VerificationMessageTemplate": pool["VerificationMessageTemplate"],
        "SmsAuthenticationMessage": "Auth {####}",
        "UserAttributeUpdateSettings": pool["UserAttributeUpdateSettings"],
        "MfaConfiguration": "OPTIONAL",
        "DeviceConfiguration": pool["DeviceConfiguration"],
        "EmailConfiguration": pool["EmailConfiguration"],
        "SmsConfiguration": pool["SmsConfiguration"],
        "UserPoolTags": {"cost-centre": "42", "app": "tenant-onboarding", "stage": "prod"},
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
        "UserPoolAddOns": pool["UserPoolAddOns"],
        "AccountRecoverySetting": {
            "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]
        },
        "UserPoolTier": "ESSENTIALS",
    }
    with Stubber(cognito) as stub:  # validates both calls against the API model
        stub.add_response("describe_user_pool", {"UserPool": pool}, {"UserPoolId": pool["Id"]})
        stub.add_response("update_user_pool", {}, expected)
        provisioning.update_user_pool(cognito, pool["Id"], names, trigger, deletion_protection=True)
        stub.assert_no_pending_responses()


def test_a_stored_stripe_key_is_replaced_only_when_asked(aws, project):
    chalice = FakeChalice(aws, project, "dev")
    run(aws, project, stripe_key=STRIPE_KEY, chalice=chalice)
    secrets = aws.client("secretsmanager")
    name = StageNames("dev").stripe_secret

    with pytest.raises(deploy.DeployError, match="--replace-stripe-key") as refused:
        run(aws, project, stripe_key=OTHER_STRIPE_KEY, chalice=chalice)
    assert STRIPE_KEY not in str(refused.value) and OTHER_STRIPE_KEY not in str(refused.value)
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == STRIPE_KEY

    deployer, said = run(aws, project, stripe_key=STRIPE_KEY, chalice=chalice)
    assert ("Stripe secret", deploy.UNCHANGED) in actions(deployer)

    deployer, said = run(aws, project, stripe_key=OTHER_STRIPE_KEY, chalice=chalice,
                         replace_stripe_key=True)
    assert ("Stripe secret", deploy.UPDATE) in actions(deployer)
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == OTHER_STRIPE_KEY
    assert OTHER_STRIPE_KEY not in said and STRIPE_KEY not in said


def test_the_deploy_key_variable_is_not_the_local_stacks(monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_local")
    assert deploy.read_stripe_key(from_stdin=False) is None

    monkeypatch.setenv("DEPLOY_STRIPE_API_KEY", STRIPE_KEY)
    assert deploy.read_stripe_key(from_stdin=False) == STRIPE_KEY

    monkeypatch.setattr("sys.stdin", io.StringIO(OTHER_STRIPE_KEY + "\n"))
    assert deploy.read_stripe_key(from_stdin=True) == OTHER_STRIPE_KEY


def _store_secret(aws, value):
    aws.client("secretsmanager").create_secret(
        Name=StageNames("dev").stripe_secret, SecretString=value
    )


def test_main_refuses_to_overwrite_a_stored_key_and_prints_neither(
    aws, project, monkeypatch, capsys
):
    monkeypatch.setattr(deploy, "PROJECT_DIR", project)
    _store_secret(aws, STRIPE_KEY)
    monkeypatch.setenv("DEPLOY_STRIPE_API_KEY", OTHER_STRIPE_KEY)

    code = deploy.main(["--stage", "dev", "--region", REGION])

    out, err = capsys.readouterr()
    assert code == 1
    assert "already holds a different key; pass --replace-stripe-key" in err
    assert STRIPE_KEY not in out + err and OTHER_STRIPE_KEY not in out + err
    secret = aws.client("secretsmanager").get_secret_value(SecretId=StageNames("dev").stripe_secret)
    assert secret["SecretString"] == STRIPE_KEY
    assert aws.client("dynamodb").list_tables()["TableNames"] == []  # stopped before anything


def test_main_ignores_the_local_stacks_stripe_key(aws, project, monkeypatch, capsys):
    monkeypatch.setattr(deploy, "PROJECT_DIR", project)
    _store_secret(aws, STRIPE_KEY)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_local")

    code = deploy.main(["--stage", "dev", "--region", REGION, "--dry-run"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "unchanged  Stripe secret" in out
    assert "STRIPE_API_KEY is the local stack's and is ignored" in err
    assert "sk_test_local" not in out + err


def test_the_stripe_key_is_stored_but_never_printed(aws, project):
    deployer, said = run(aws, project, stripe_key=STRIPE_KEY)

    secret = aws.client("secretsmanager").get_secret_value(
        SecretId=StageNames("dev").stripe_secret
    )["SecretString"]
    assert secret == STRIPE_KEY
    assert STRIPE_KEY not in said
    env = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["dev"][
        "environment_variables"
    ]
    assert env["STRIPE_SECRET_ID"] == StageNames("dev").stripe_secret
    assert STRIPE_KEY not in (project / ".chalice" / "config.json").read_text()


def test_other_stages_get_deletion_protection_and_their_shared_contact_list(aws, project):
    run(aws, project, stage="prod")

    table = aws.client("dynamodb").describe_table(TableName=StageNames("prod").table)["Table"]
    assert table["DeletionProtectionEnabled"] is True
    lists = aws.client("sesv2").list_contact_lists()["ContactLists"]
    assert [c["ContactListName"] for c in lists] == ["tenants-prod"]
    stage = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["prod"]
    assert stage["lambda_functions"] == policies.stage_function_config("prod")
    assert stage["environment_variables"]["SHARED_CONTACT_LIST_NAME"] == "tenants-prod"
    assert (project / ".chalice" / "policy-prod-post_confirmation.json").exists()


@pytest.mark.parametrize("stage, mode", [("dev", "list-per-tenant"), ("prod", "topic-per-tenant")])
def test_the_policy_files_follow_the_stages_contact_list_mode(aws, project, stage, mode):
    run(aws, project, stage=stage)

    for function, document in policies.policies(stage, mode).items():
        path = project / ".chalice" / policies.policy_file(stage, function)
        assert json.loads(path.read_text()) == document, path.name
    written = json.loads(
        (project / ".chalice" / policies.policy_file(stage, "create_contact_list")).read_text()
    )
    ses = [r for s in written["Statement"] if s["Action"][0].startswith("ses:")
           for r in s["Resource"]]
    wanted = "tenant-*" if mode == "list-per-tenant" else f"tenants-{stage}"
    assert ses == [f"arn:aws:ses:*:*:contact-list/{wanted}"]


def test_a_shared_list_under_its_old_name_stops_the_deploy_before_any_change(aws, project):
    aws.client("sesv2").create_contact_list(ContactListName="tenant-onboarding-prod")
    config_before = (project / ".chalice" / "config.json").read_text()

    with pytest.raises(deploy.DeployError, match="under the old name tenant-onboarding-prod"):
        run(aws, project, stage="prod")

    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert (project / ".chalice" / "config.json").read_text() == config_before
    assert not list((project / ".chalice").glob("policy-prod-*.json"))


def test_an_index_that_copies_the_task_token_is_recreated_without_it(aws, project):
    ddb = aws.client("dynamodb")
    names = StageNames("dev")
    old_index = {**provisioning._STATUS_INDEX, "Projection": {"ProjectionType": "ALL"}}
    ddb.create_table(
        TableName=names.table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=provisioning._ATTRIBUTES,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[old_index],
    )
    ddb.put_item(TableName=names.table, Item={
        "pk": {"S": "t1"}, "sk": {"S": "tenant"}, "status": {"S": "onboarding"},
        "createdAt": {"S": "2026-11-26T13:59:11.319Z"}, "name": {"S": "Ada Ltd"},
        "decideBy": {"S": "2026-11-27T13:59:11.319Z"},
        "pendingDecision": {"M": {"taskToken": {"S": "secret-token"}}},
    })
    assert provisioning.stale_indexes(ddb.describe_table(TableName=names.table)["Table"]) == [
        provisioning.STATUS_INDEX
    ]

    deployer, said = run(aws, project)

    assert "recreate index byStatus" in said
    table = ddb.describe_table(TableName=names.table)["Table"]
    assert provisioning.stale_indexes(table) == []
    [index] = table["GlobalSecondaryIndexes"]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    items = ddb.query(
        TableName=names.table, IndexName=provisioning.STATUS_INDEX,
        KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "onboarding"}},
    )["Items"]
    assert [i["decideBy"]["S"] for i in items] == ["2026-11-27T13:59:11.319Z"]
    assert all("pendingDecision" not in i for i in items)

    deployer, _ = run(aws, project)
    assert ("DynamoDB table", deploy.UNCHANGED) in actions(deployer)


def test_main_refuses_an_unknown_stage_without_a_traceback(aws, project, monkeypatch, capsys):
    monkeypatch.setattr(deploy, "PROJECT_DIR", project)
    code = deploy.main(["--stage", "nosuchstage", "--region", REGION, "--dry-run"])

    assert code == 1
    assert 'stage "nosuchstage" is not in .chalice/config.json' in capsys.readouterr().err
