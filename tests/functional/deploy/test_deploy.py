"""The deploy script's flow against a moto server started here: real boto3
calls over HTTP to a local endpoint (S3 uploads, change set create /
describe / execute / delete, stack events, outputs, delete).

moto's CloudFormation cannot run the SAM transform, so `make package` is
replaced by a small template of resources it can create (with a CodeUri, to
see the upload); the packaged template itself is tested in
test_template.py. What only a real account can show is in docs/deploy.md.
"""
import argparse
import io
import json
import shutil
import time
import zipfile
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from scripts.deploy import deploy
from scripts.local.ses import reproduce_ses_contact_lists
from scripts.shared import PROJECT_DIR, stripe_secret_name
from tests.support import free_port

REGION = "us-east-1"
STRIPE_KEY = "sk_test_do_not_print_me_123"
OTHER_STRIPE_KEY = "sk_live_nor_me_456"


@pytest.fixture(autouse=True)
def no_deploy_key(monkeypatch):
    monkeypatch.delenv(deploy.STRIPE_KEY_VARIABLE, raising=False)


@pytest.fixture(scope="module")
def moto_server():
    """One moto server for the module (starting and stopping one costs about a
    second); each test resets its state (``aws``)."""
    reproduce_ses_contact_lists(enforce_quotas=False)  # SES tenants, which moto lacks
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    reproduce_ses_contact_lists(enforce_quotas=False)  # whatever a test before set
    # moto's state lives in this process, shared by every server it starts:
    # each test starts from none
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def project(tmp_path):
    """What the deploy script reads (the stages) and writes (the outputs)."""
    (tmp_path / ".chalice").mkdir()
    shutil.copy(PROJECT_DIR / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")
    return tmp_path


class FakePackage:
    """Stands in for make package: a template moto can create, with a zip to upload."""

    def __init__(self, project):
        self.out = project / "build"
        self.queues = ["first"]

    def __call__(self, stage):
        self.out.mkdir(exist_ok=True)
        with zipfile.ZipFile(self.out / "deployment.zip", "w") as archive:
            # a fixed date, as make package writes: the same code, the same bytes
            archive.writestr(zipfile.ZipInfo("app.py", date_time=(1980, 1, 1, 0, 0, 0)),
                             "print('hello')\n")
        resources = {
            f"Queue{name.title()}": {"Type": "AWS::SQS::Queue",
                                     "Properties": {"QueueName": f"{stage}-{name}"}}
            for name in self.queues
        }
        resources["Code"] = {"Type": "AWS::SSM::Parameter", "Metadata": {"CodeUri": "x"},
                             "Properties": {"Type": "String", "Value": "code",
                                            "Name": f"/{stage}/code"}}
        # CodeUri where SAM functions carry it: the deploy uploads and rewrites it
        resources["Code"]["Properties"]["CodeUri"] = "./deployment.zip"
        template = {
            "Parameters": {"Stripe": {"Type": "String", "Default": "off"}},
            "Resources": resources,
            "Outputs": {"EndpointURL": {"Value": "https://abc123.execute-api.example/api/"},
                        "UserPoolId": {"Value": "us-east-1_pool"},
                        "UserPoolClientId": {"Value": "client123"}},
        }
        path = self.out / "template.json"
        path.write_text(json.dumps(template))
        return path


def deployer_for(aws, project, stage="dev", package=None):
    said = []
    deployer = deploy.Deployer(aws, stage, project_dir=project, say=said.append,
                               package=package or FakePackage(project), poll_seconds=0.01)
    return deployer, said


def stack_of(aws, stage="dev"):
    return aws.client("cloudformation").describe_stacks(StackName=f"tenant-onboarding-{stage}")[
        "Stacks"][0]


def pending_change_sets(aws):
    """Change sets neither executed nor deleted (moto also lists executed ones)."""
    summaries = aws.client("cloudformation").list_change_sets(StackName="tenant-onboarding-dev")
    return [s for s in summaries["Summaries"] if s.get("ExecutionStatus") != "EXECUTE_COMPLETE"]


# --- deploy ---------------------------------------------------------------------------
def test_a_first_deploy_uploads_plans_creates_the_stack_and_writes_its_outputs(aws, project):
    deployer, said = deployer_for(aws, project)

    outputs = deployer.deploy()

    text = "\n".join(said)
    assert "add      AWS::SQS::Queue" in text and "QueueFirst" in text
    assert "2 to add, 0 to modify" in text
    assert stack_of(aws)["StackStatus"] == "CREATE_COMPLETE"
    assert {"stage": "dev", "stackName": "tenant-onboarding-dev", "region": REGION}.items() <= outputs.items()
    assert json.loads((project / ".chalice" / "outputs-dev.json").read_text()) == outputs
    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=deployer.bucket)["Contents"]]
    assert any(k.endswith(".zip") for k in keys) and any(k.endswith(".template.json") for k in keys)
    [uploaded] = [k for k in keys if k.endswith(".template.json")]
    body = json.loads(s3.get_object(Bucket=deployer.bucket, Key=uploaded)["Body"].read())
    code_uri = body["Resources"]["Code"]["Properties"]["CodeUri"]
    assert code_uri.startswith(f"s3://{deployer.bucket}/dev/") and code_uri.endswith(".zip")
    public = s3.get_public_access_block(Bucket=deployer.bucket)["PublicAccessBlockConfiguration"]
    assert all(public.values())


def test_the_stacks_outputs_are_what_the_admin_cli_reads(aws, project, monkeypatch):
    # moto's change sets leave a stack without outputs: the mapping is checked here
    deployer, _ = deployer_for(aws, project)
    monkeypatch.setattr(deploy.Deployer, "describe", lambda self: {"Outputs": [
        {"OutputKey": "EndpointURL", "OutputValue": "https://abc.execute-api.eu-west-1.amazonaws.com/api/"},
        {"OutputKey": "UserPoolId", "OutputValue": "eu-west-1_abc"},
        {"OutputKey": "UserPoolClientId", "OutputValue": "client"},
        {"OutputKey": "StateMachineArn", "OutputValue": "arn:machine"},
    ]})

    outputs = deployer.outputs()

    assert outputs["apiUrl"] == "https://abc.execute-api.eu-west-1.amazonaws.com/api/"
    assert (outputs["userPoolId"], outputs["userPoolClientId"]) == ("eu-west-1_abc", "client")
    assert outputs["stateMachineArn"] == "arn:machine" and outputs["region"] == REGION


def test_a_second_deploy_with_nothing_changed_says_so_and_changes_nothing(aws, project):
    package = FakePackage(project)
    deployer_for(aws, project, package=package)[0].deploy()
    before = stack_of(aws)
    objects = aws.client("s3").list_objects_v2(Bucket=deployer_for(aws, project)[0].bucket)["KeyCount"]

    deployer, said = deployer_for(aws, project, package=package)
    deployer.deploy()

    assert "Nothing to change: stage dev is up to date." in said
    assert not any(line.startswith("Plan:") for line in said)
    assert stack_of(aws)["StackStatus"] == before["StackStatus"]
    assert aws.client("s3").list_objects_v2(Bucket=deployer.bucket)["KeyCount"] == objects
    assert pending_change_sets(aws) == []


def test_a_dry_run_prints_the_plan_and_deletes_the_change_set(aws, project):
    package = FakePackage(project)
    deployer_for(aws, project, package=package)[0].deploy()
    package.queues.append("second")

    deployer, said = deployer_for(aws, project, package=package)
    assert deployer.deploy(dry_run=True) == {}

    text = "\n".join(said)
    assert "QueueSecond" in text and "Dry run" in text
    assert pending_change_sets(aws) == []
    assert aws.client("sqs").list_queues(QueueNamePrefix="dev-second").get("QueueUrls") is None


def test_a_dry_run_of_a_new_stage_leaves_no_stack_behind(aws, project):
    deployer, said = deployer_for(aws, project)

    deployer.deploy(dry_run=True)

    assert "Plan:" in said
    assert deployer.describe() is None or deployer.describe()["StackStatus"] == "DELETE_COMPLETE"
    assert not (project / ".chalice" / "outputs-dev.json").exists()


def test_a_new_stack_stops_when_an_earlier_stacks_retained_table_exists(aws, project):
    aws.client("dynamodb").create_table(
        TableName="tenant-onboarding-dev-tenants", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    deployer, _ = deployer_for(aws, project)

    with pytest.raises(deploy.DeployError, match="table tenant-onboarding-dev-tenants .* still exists"):
        deployer.deploy()
    assert deployer.describe() is None


# --- failures: one clear line, never a traceback ---------------------------------------------
@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_IN_PROGRESS"])
def test_a_stack_that_takes_no_change_set_is_one_clear_line(aws, monkeypatch, capsys, status):
    monkeypatch.setattr(deploy.Deployer, "describe", lambda self: {"StackStatus": status})

    code = deploy.main(["--stage", "dev"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and status in err and "Traceback" not in err
    assert "deploy" in err.lower()


def test_missing_credentials_are_one_clear_line(monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup

    assert deploy.main(["--stage", "dev", "--region", REGION]) == 1

    err = capsys.readouterr().err
    assert err.startswith("deploy: no AWS credentials") and err.count("\n") == 1


def test_a_missing_region_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)

    assert deploy.main(["--stage", "dev"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("deploy: no AWS region") and err.count("\n") == 1


def test_an_unknown_stage_is_one_clear_line(aws, capsys):
    assert deploy.main(["--stage", "nope"]) == 1
    err = capsys.readouterr().err
    assert 'stage "nope" is not in .chalice/config.json' in err and "Traceback" not in err


def stack_event(event_id, status, logical, at, reason=None):
    event = {"EventId": event_id, "ResourceStatus": status, "LogicalResourceId": logical,
             "ResourceType": "AWS::Cognito::UserPool", "Timestamp": at}
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def test_a_stage_name_too_long_for_its_function_names_is_one_line(capsys):
    # 18 characters pass a pattern of 20, but not Lambda's 64 for update_tenant_with_stripe_id
    assert deploy.main(["--stage", "onboarding-staging"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'stage "onboarding-staging" has 18 characters, and at most 17 fit' in err
    assert "tenant-onboarding-onboarding-staging-update_tenant_with_stripe_id" in err


def with_ses_sender(project, sender):
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    config["stages"]["dev"]["ses_sender"] = sender
    path.write_text(json.dumps(config))


SENDER = {"address": "no-reply@mail.example.com",
          "identity_arn": "arn:aws:ses:us-east-1:000000000000:identity/example.com"}


def test_without_an_ses_sender_the_plan_warns_of_cognitos_daily_cap(aws, project):
    deployer, said = deployer_for(aws, project)

    deployer.deploy(dry_run=True)

    [warning] = [line for line in said if "Cognito mail" in line]
    assert warning.startswith("  WARNING: Cognito mail: stage dev has no SES sender (ses_sender")
    assert "at most 50 messages a day for the whole AWS account" in warning
    assert said.index(warning) > said.index("Plan:")


def test_with_an_ses_sender_the_plan_names_it_and_warns_of_nothing(aws, project):
    with_ses_sender(project, SENDER)
    deployer, said = deployer_for(aws, project)

    deployer.deploy(dry_run=True)

    assert f"  Cognito mail: through SES, from no-reply@mail.example.com ({SENDER['identity_arn']})" in said
    assert not any("WARNING" in line for line in said)


@pytest.mark.parametrize(("sender", "complaint"), [
    ({"address": "no-reply@example.com"}, "must be"),
    ({**SENDER, "address": "not an address"}, "is not an email address"),
    ({**SENDER, "identity_arn": "arn:aws:sns:us-east-1:000000000000:topic"}, "is not an SES identity"),
    ({**SENDER, "address": "ops@example.org"}, "only through that address's identity"),
])
def test_an_ses_sender_ses_would_refuse_stops_the_deploy_before_anything(aws, project, sender, complaint):
    with_ses_sender(project, sender)

    with pytest.raises(deploy.stack_template.TemplateError, match=complaint) as refused:
        deployer_for(aws, project)

    assert "\n" not in str(refused.value)
    assert aws.client("cloudformation").list_stacks()["StackSummaries"] == []


class RollingBack:
    """A CloudFormation that fails the user pool and rolls back, as AWS reports it:
    its events stamped by CloudFormation's clock (``at``), newest first."""

    def __init__(self, at=None, earlier=()):
        at = at or datetime.now(UTC)
        self.status = "REVIEW_IN_PROGRESS"
        self.events = [stack_event("0", "REVIEW_IN_PROGRESS", "tenant-onboarding-dev", at), *earlier]
        self.operation = [
            stack_event("1", "CREATE_IN_PROGRESS", "TenantTable", at),
            stack_event("2", "CREATE_FAILED", "UserPool", at,
                        "Invalid lambda function configuration: the trigger cannot be invoked"),
            stack_event("3", "CREATE_FAILED", "UserPoolClient", at, "Resource creation cancelled"),
            stack_event("4", "DELETE_COMPLETE", "TenantTable", at),
            stack_event("5", "ROLLBACK_COMPLETE", "tenant-onboarding-dev", at),
        ]

    def execute_change_set(self, **_):
        self.events = [*reversed(self.operation), *self.events]
        self.status = "ROLLBACK_COMPLETE"

    def describe_stacks(self, **_):
        return {"Stacks": [{"StackStatus": self.status}]}

    def get_paginator(self, name):
        assert name == "describe_stack_events"
        cfn = self

        class Pages:
            def paginate(self, **_):
                return [{"StackEvents": list(cfn.events)}]

        return Pages()


def test_a_failed_deploy_names_the_first_failed_resource_and_its_reason(aws, project):
    deployer, said = deployer_for(aws, project)
    deployer._clients["cloudformation"] = RollingBack()

    with pytest.raises(deploy.DeployError) as failed:
        deployer.execute("arn:change-set")

    message = str(failed.value)
    assert "rolled stack tenant-onboarding-dev back (ROLLBACK_COMPLETE)" in message
    assert "First failure: UserPool (AWS::Cognito::UserPool): Invalid lambda function" in message
    assert any("CREATE_FAILED" in line and "UserPool " in line for line in said)


def test_the_first_failure_is_found_by_event_id_whatever_the_clocks_say(aws, project):
    # CloudFormation's clock three hours behind this machine's, and an earlier
    # operation's failure among the stack's events: neither may change the answer
    behind = datetime.now(UTC) - timedelta(hours=3)
    earlier = [stack_event("old-2", "UPDATE_FAILED", "EventBus", behind - timedelta(days=1),
                           "an earlier deploy's failure")]
    deployer, said = deployer_for(aws, project)
    deployer._clients["cloudformation"] = RollingBack(at=behind, earlier=earlier)

    with pytest.raises(deploy.DeployError, match="First failure: UserPool .*Invalid lambda"):
        deployer.execute("arn:change-set")

    shown = [line for line in said if line.startswith("  ")]
    assert len(shown) == 5 and not any("EventBus" in line for line in shown)


class Answering:
    """A real client of the moto server, with some of its answers replaced."""

    def __init__(self, real, **answers):
        self._real, self._answers = real, answers

    def __getattr__(self, name):
        return self._answers.get(name) or getattr(self._real, name)


def test_a_change_set_that_never_finishes_stops_the_deploy_with_one_line(aws, project):
    deployer, _ = deployer_for(aws, project)
    cfn = aws.client("cloudformation")
    deployer._clients["cloudformation"] = Answering(
        cfn, describe_change_set=lambda **_: {"Status": "CREATE_IN_PROGRESS"})
    deployer._change_set_timeout = 0.3

    began = time.monotonic()
    with pytest.raises(deploy.DeployError) as stopped:
        deployer.deploy()

    message = str(stopped.value)
    assert time.monotonic() - began < 10
    assert "\n" not in message and "still creating change set deploy-" in message
    assert "--change-set-timeout" in message and "aws cloudformation describe-change-set" in message
    assert stack_of(aws)["StackStatus"] == "REVIEW_IN_PROGRESS"  # nothing was executed


def test_a_stack_operation_that_never_ends_stops_the_wait_with_one_line(aws, project):
    deployer, said = deployer_for(aws, project)
    hanging = RollingBack()
    hanging.execute_change_set = lambda **_: setattr(hanging, "status", "UPDATE_IN_PROGRESS")
    deployer._clients["cloudformation"] = hanging
    deployer._stack_timeout = 0.3

    with pytest.raises(deploy.DeployError) as stopped:
        deployer.execute("arn:change-set")

    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("stopped waiting for the change set's execution after 0.3 s")
    assert "still UPDATE_IN_PROGRESS" in message and "describe-stack-events" in message


@pytest.mark.parametrize(("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("1h", 3600)])
def test_the_waits_are_set_in_seconds_or_with_a_unit(text, seconds):
    assert deploy.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0", "-5m", "m"])
def test_a_wait_that_is_not_a_duration_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        deploy.parse_duration(text)


def refusing(aws, reason):
    """moto's CloudFormation, with every change set it makes refused for ``reason``."""
    cfn = aws.client("cloudformation")

    def refused(**kwargs):
        return {**cfn.describe_change_set(**kwargs), "Status": "FAILED", "StatusReason": reason}

    return Answering(cfn, describe_change_set=refused)


def test_a_refused_change_set_is_deleted_with_the_empty_stack_it_made(aws, project):
    deployer, _ = deployer_for(aws, project)
    deployer._clients["cloudformation"] = refusing(
        aws, "Requires capabilities : [CAPABILITY_NAMED_IAM]")

    with pytest.raises(deploy.DeployError, match="refused the change set .*CAPABILITY_NAMED_IAM"):
        deployer.deploy()

    assert pending_change_sets(aws) == []
    assert deployer.describe() is None or deployer.describe()["StackStatus"] == "DELETE_COMPLETE"


def test_a_refused_update_leaves_no_change_set_and_the_stack_as_it_was(aws, project):
    package = FakePackage(project)
    deployer_for(aws, project, package=package)[0].deploy()
    package.queues.append("second")
    deployer, _ = deployer_for(aws, project, package=package)
    deployer._clients["cloudformation"] = refusing(
        aws, "Template error: unresolved resource dependencies [Nope]")

    with pytest.raises(deploy.DeployError, match="unresolved resource dependencies"):
        deployer.deploy()

    assert pending_change_sets(aws) == []
    assert stack_of(aws)["StackStatus"] == "CREATE_COMPLETE"


class OnePlan:
    def __init__(self, changes):
        self.changes = changes

    def describe_change_set(self, **_):
        return {"Changes": [{"Type": "Resource", "ResourceChange": c} for c in self.changes]}


def test_the_plan_calls_out_replacements():
    deployer = deploy.Deployer.__new__(deploy.Deployer)
    said = []
    deployer._say, deployer.stack = said.append, "tenant-onboarding-dev"
    deployer._clients = {"cloudformation": OnePlan([
        {"Action": "Modify", "LogicalResourceId": "UserPoolClient",
         "ResourceType": "AWS::Cognito::UserPoolClient", "Replacement": "True",
         "Details": [{"Target": {"Attribute": "Properties", "Name": "ClientName"}}]},
        {"Action": "Modify", "LogicalResourceId": "CreateTenantRecord",
         "ResourceType": "AWS::Lambda::Function", "Replacement": "False",
         "Details": [{"Target": {"Attribute": "Properties", "Name": "Code"}}]},
        {"Action": "Add", "LogicalResourceId": "NewThing", "ResourceType": "AWS::SQS::Queue"},
        {"Action": "Remove", "LogicalResourceId": "OldThing", "ResourceType": "AWS::SQS::Queue"},
    ])}

    changes = deployer.plan("arn:change-set")

    lines = said[1:-1]
    assert [line.split()[0] for line in lines] == ["remove", "modify", "REPLACE", "add"]
    assert "(ClientName)" in lines[2] and "a new resource replaces this one" in lines[2]
    assert "(Code)" in lines[1]
    assert said[-1].strip() == "1 to add, 2 to modify (1 replaced or possibly replaced), 1 to remove"
    assert len(changes) == 4


# --- delete ---------------------------------------------------------------------------
def make_retained_data(aws):
    aws.client("dynamodb").create_table(
        TableName="tenant-onboarding-dev-tenants", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], DeletionProtectionEnabled=True)
    pool = aws.client("cognito-idp").create_user_pool(
        PoolName="tenant-onboarding-dev-tenants", DeletionProtection="ACTIVE")["UserPool"]["Id"]
    aws.client("secretsmanager").create_secret(Name=stripe_secret_name("dev"), SecretString=STRIPE_KEY)
    return pool


def test_delete_removes_the_stack_and_keeps_the_data(aws, project):
    deployer, said = deployer_for(aws, project)
    deployer.deploy()
    pool = make_retained_data(aws)

    deployer.delete()

    assert deployer.describe() is None or deployer.describe()["StackStatus"] == "DELETE_COMPLETE"
    text = "\n".join(said)
    assert "kept: DynamoDB table tenant-onboarding-dev-tenants" in text
    assert f"kept: Cognito user pool {pool}" in text
    assert f"kept: Stripe secret {stripe_secret_name('dev')}" in text
    assert "tenant-onboarding-dev-tenants" in aws.client("dynamodb").list_tables()["TableNames"]
    assert not (project / ".chalice" / "outputs-dev.json").exists()
    assert STRIPE_KEY not in text


def test_delete_data_asks_first_and_then_removes_what_was_kept(aws, project):
    deployer, said = deployer_for(aws, project)
    deployer.deploy()
    pool = make_retained_data(aws)

    with pytest.raises(deploy.DeployError, match="not confirmed"):
        deployer.delete(delete_data=True, confirm=lambda listing: False)
    assert "tenant-onboarding-dev-tenants" in aws.client("dynamodb").list_tables()["TableNames"]

    asked = []
    deployer.delete(delete_data=True, confirm=lambda listing: asked.append(listing) or True)

    assert "DynamoDB table tenant-onboarding-dev-tenants" in asked[0]
    assert aws.client("dynamodb").list_tables()["TableNames"] == []
    assert aws.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []
    assert f"  deleted: Cognito user pool {pool}" in said
    secret = aws.client("secretsmanager").describe_secret(SecretId=stripe_secret_name("dev"))
    assert secret.get("DeletedDate")  # scheduled, recoverable for 7 days


def test_delete_data_removes_what_onboarding_made_in_ses_for_the_stages_tenants_only(aws, project):
    deployer, said = deployer_for(aws, project)
    deployer.deploy()
    make_retained_data(aws)
    ddb, sesv2 = aws.client("dynamodb"), aws.client("sesv2")
    records = [  # a tenant of each mode, and one that already gave its place back
        {"pk": "t-store", "sk": "tenant", "list": "subscribers-t-store",
         "listMode": "subscriber-store", "sesTenant": "tenant-t-store"},
        {"pk": "t-list", "sk": "tenant", "list": "tenant-t-list"},
        {"pk": "t-topic", "sk": "tenant", "list": "tenants-dev", "topic": "tenant-t-topic"},
        {"pk": "t-gone", "sk": "tenant", "released": "yes"},
    ]
    for record in records:
        ddb.put_item(TableName="tenant-onboarding-dev-tenants",
                     Item={k: {"S": v} for k, v in record.items()})
    for name, stage in (("tenant-t-store", "dev"), ("tenant-t-lost", "dev"), ("tenant-t-prod", "prod")):
        sesv2.create_tenant(TenantName=name, Tags=[{"Key": "tenant-onboarding:stage", "Value": stage}])
    sesv2.create_contact_list(ContactListName="tenant-t-list")

    deployer.delete(delete_data=True, confirm=lambda listing: True)

    # the record's SES tenant, and the one tagged dev the table forgot; not prod's
    assert [t["TenantName"] for t in sesv2.list_tenants()["Tenants"]] == ["tenant-t-prod"]
    assert sesv2.list_contact_lists()["ContactLists"] == []
    assert "  deleted: SES tenants of the stage's tenants (2)" in said
    assert "  deleted: SES contact lists of the stage's tenants (1)" in said
    assert said.index("  deleted: SES tenants of the stage's tenants (2)") < said.index(
        "  deleted: DynamoDB table tenant-onboarding-dev-tenants")


def test_delete_data_run_twice_is_harmless_and_says_nothing_is_left(aws, project):
    deployer, _ = deployer_for(aws, project)
    deployer.deploy()
    make_retained_data(aws)
    deployer.delete(delete_data=True, confirm=lambda listing: True)

    again, said = deployer_for(aws, project)
    asked = []
    again.delete(delete_data=True, confirm=lambda listing: asked.append(listing) or True)

    assert asked == []  # nothing to confirm
    name = stripe_secret_name("dev")
    assert any(line.startswith(f"  already scheduled for deletion: Stripe secret {name}")
               for line in said)
    assert said[-1] == "  nothing to delete: stage dev has no other data left"
    assert aws.client("secretsmanager").describe_secret(SecretId=name).get("DeletedDate")


def test_delete_data_without_a_terminal_or_yes_refuses(aws, project, monkeypatch, capsys):
    monkeypatch.setattr(deploy, "PROJECT_DIR", project)
    make_retained_data(aws)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    assert deploy.main(["--stage", "dev", "--delete", "--delete-data"]) == 1

    assert "confirm at a terminal, or pass --yes" in capsys.readouterr().err
    assert aws.client("dynamodb").list_tables()["TableNames"] == ["tenant-onboarding-dev-tenants"]


# --- the Stripe key ---------------------------------------------------------------------
def test_the_stripe_key_is_stored_outside_the_stack_and_never_printed(aws, project):
    deployer, said = deployer_for(aws, project)

    deployer.deploy(stripe_key=STRIPE_KEY)

    secret = aws.client("secretsmanager").get_secret_value(SecretId=stripe_secret_name("dev"))
    assert secret["SecretString"] == STRIPE_KEY
    assert STRIPE_KEY not in "\n".join(said)
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack_of(aws).get("Parameters", [])}
    assert parameters.get("Stripe") == "on"


def test_a_stored_stripe_key_is_replaced_only_when_asked(aws, project):
    deployer_for(aws, project)[0].deploy(stripe_key=STRIPE_KEY)
    secrets = aws.client("secretsmanager")

    with pytest.raises(deploy.DeployError, match="--replace-stripe-key") as refused:
        deployer_for(aws, project)[0].deploy(stripe_key=OTHER_STRIPE_KEY)
    assert STRIPE_KEY not in str(refused.value) and OTHER_STRIPE_KEY not in str(refused.value)
    assert secrets.get_secret_value(SecretId=stripe_secret_name("dev"))["SecretString"] == STRIPE_KEY

    deployer, said = deployer_for(aws, project)
    deployer.deploy(stripe_key=OTHER_STRIPE_KEY, replace_stripe_key=True)
    assert secrets.get_secret_value(SecretId=stripe_secret_name("dev"))["SecretString"] == OTHER_STRIPE_KEY
    assert OTHER_STRIPE_KEY not in "\n".join(said) and STRIPE_KEY not in "\n".join(said)


def test_the_deploy_key_variable_is_not_the_local_stacks(monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_local")
    assert deploy.read_stripe_key(from_stdin=False) is None

    monkeypatch.setenv("DEPLOY_STRIPE_API_KEY", STRIPE_KEY)
    assert deploy.read_stripe_key(from_stdin=False) == STRIPE_KEY

    monkeypatch.setattr("sys.stdin", io.StringIO(OTHER_STRIPE_KEY + "\n"))
    assert deploy.read_stripe_key(from_stdin=True) == OTHER_STRIPE_KEY


def schedule_the_secrets_deletion(aws, project):
    """What --delete --delete-data leaves of a stage that had Stripe on."""
    deployer_for(aws, project)[0].deploy(stripe_key=STRIPE_KEY)
    make_data = deployer_for(aws, project)[0]
    make_data.delete(delete_data=True, confirm=lambda listing: True)
    return aws.client("secretsmanager")


def test_the_next_deploy_restores_a_secret_scheduled_for_deletion_and_says_so(aws, project):
    secrets = schedule_the_secrets_deletion(aws, project)
    name = stripe_secret_name("dev")

    deployer, said = deployer_for(aws, project)
    deployer.deploy()

    assert "DeletedDate" not in secrets.describe_secret(SecretId=name)
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == STRIPE_KEY
    [line] = [line for line in said if line.startswith("  Stripe:")]
    assert line.startswith(f"  Stripe: on (secret {name}; restored: it was scheduled for deletion on ")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack_of(aws).get("Parameters", [])}
    assert parameters.get("Stripe") == "on"
    assert STRIPE_KEY not in "\n".join(said)


def test_a_dry_run_says_it_would_restore_the_secret_and_leaves_it_scheduled(aws, project):
    secrets = schedule_the_secrets_deletion(aws, project)
    name = stripe_secret_name("dev")

    deployer, said = deployer_for(aws, project)
    deployer.deploy(dry_run=True)

    assert any(line.startswith(f"  Stripe: on (secret {name} is scheduled for deletion on ")
               and "would restore it" in line for line in said)
    assert secrets.describe_secret(SecretId=name).get("DeletedDate")


def test_a_restored_secret_keeps_its_key_unless_asked_to_replace_it(aws, project):
    secrets = schedule_the_secrets_deletion(aws, project)

    with pytest.raises(deploy.DeployError, match="--replace-stripe-key") as refused:
        deployer_for(aws, project)[0].deploy(stripe_key=OTHER_STRIPE_KEY)

    assert "restored" in str(refused.value) and OTHER_STRIPE_KEY not in str(refused.value)
    assert secrets.get_secret_value(SecretId=stripe_secret_name("dev"))["SecretString"] == STRIPE_KEY


def test_a_secret_that_cannot_be_restored_is_one_line_saying_how_to_restore_it(aws, project):
    secrets = schedule_the_secrets_deletion(aws, project)
    deployer, said = deployer_for(aws, project)

    def denied(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "RestoreSecret")

    deployer._clients["secretsmanager"] = Answering(secrets, restore_secret=denied)

    with pytest.raises(deploy.DeployError) as stopped:
        deployer.deploy()

    message = str(stopped.value)
    name = stripe_secret_name("dev")
    assert "\n" not in message and "scheduled for deletion on " in message
    assert "AccessDeniedException" in message
    assert f"aws secretsmanager restore-secret --secret-id {name}" in message
    assert deployer.describe() is None  # stopped before anything was made
