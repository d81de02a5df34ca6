"""The deploy script against a moto server started here: real boto3 calls
over HTTP to a local endpoint. `chalice deploy` itself is replaced by a
fixture that writes .chalice/deployed/STAGE.json (moto's API Gateway cannot
import Chalice's API) and creates the functions it names; everything after
it runs for real."""
import json
import shutil

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from scripts import deploy, policies, provisioning
from scripts.provisioning import PROJECT_DIR, StageNames
from tests.conftest import free_port

REGION = "us-east-1"
STRIPE_KEY = "sk_test_do_not_print_me_123"


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


def run(aws, project, stage="dev", dry_run=False, stripe_key=None, delete=None, chalice=None):
    said = []
    deployer = deploy.Deployer(
        aws, stage, project_dir=project, dry_run=dry_run, stripe_key=stripe_key,
        chalice=chalice or FakeChalice(aws, project, stage), say=said.append,
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

    deployer, said = run(aws, project, delete=False, chalice=chalice)

    assert aws.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert aws.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []
    assert StageNames("dev").event_bus not in [
        b["Name"] for b in aws.client("events").list_event_buses()["EventBuses"]
    ]
    assert chalice.calls[-1] == ["delete", "--stage", "dev"]
    assert aws.client("dynamodb").list_tables()["TableNames"] == [StageNames("dev").table]
    assert "pass --delete-data to delete" in said

    run(aws, project, delete=True, chalice=chalice)
    assert aws.client("dynamodb").list_tables()["TableNames"] == []


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
    assert [c["ContactListName"] for c in lists] == [StageNames("prod").shared_contact_list]
    env = json.loads((project / ".chalice" / "config.json").read_text())["stages"]["prod"]
    assert env["lambda_functions"] == policies.stage_function_config("prod")
    assert (project / ".chalice" / "policy-prod-post_confirmation.json").exists()


def test_main_refuses_an_unknown_stage_without_a_traceback(aws, project, monkeypatch, capsys):
    monkeypatch.setattr(deploy, "PROJECT_DIR", project)
    code = deploy.main(["--stage", "nosuchstage", "--region", REGION, "--dry-run"])

    assert code == 1
    assert 'stage "nosuchstage" is not in .chalice/config.json' in capsys.readouterr().err
