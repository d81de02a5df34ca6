"""Canaries: each patch of moto (scripts/local/patching.py) against moto as released.

Each test runs moto without our patches and asserts that it still behaves
unlike AWS, the way its patch says. When one fails, moto has started to
behave like AWS by itself (or differently): read the patch's docstring, and
remove the patch if moto now does what it did. ``test_every_patch_has_a_canary``
keeps the list honest.
"""
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from scripts.local.aws import behave_like_aws, remember_backends_by_host
from scripts.local.patching import MOTO_VERSION, MotoVersionError, as_released, check_moto_version, replaced
from scripts.local.ses import reproduce_ses_contact_lists
from tests.support import eventually

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/canary"
CANARIES: dict[str, str] = {}  # patched member -> the canary that covers it


def covers(*members: str) -> Any:
    def register(test: Any) -> Any:
        for member in members:
            CANARIES[member] = test.__name__
        return test

    return register


SFN = "moto.stepfunctions.parser"
BACKEND = f"{SFN}.models.StepFunctionsParserBackend"
DYNAMODB = "moto.dynamodb.models.DynamoDBBackend"
SES = "moto.sesv2.models.SESV2Backend"


@pytest.fixture(scope="module", autouse=True)
def patched() -> None:
    behave_like_aws(enforce_ses_quotas=False)
    remember_backends_by_host()


@pytest.fixture
def moto() -> Iterator[boto3.session.Session]:
    """moto as released, with its Step Functions engine running definitions."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), as_released():
        yield boto3.session.Session(region_name=REGION)


class TokenWait:
    """A state machine whose first task waits for its token (sent to an SQS queue)."""

    def __init__(self, session: boto3.session.Session, timeout_seconds: int = 30,
                 then: dict[str, Any] = None) -> None:
        self.sqs = session.client("sqs")
        self.sfn = session.client("stepfunctions")
        self.queue = self.sqs.create_queue(QueueName="tokens")["QueueUrl"]
        wait: dict[str, Any] = {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "TimeoutSeconds": timeout_seconds,
            "Parameters": {"QueueUrl": self.queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        }
        states: dict[str, Any] = {"Wait for token": wait}
        if then:
            wait["Next"] = "Then"
            states["Then"] = then
        else:
            wait["End"] = True
        machine = self.sfn.create_state_machine(
            name="canary", roleArn=ROLE,
            definition=json.dumps({"StartAt": "Wait for token", "States": states}))
        self.execution = self.sfn.start_execution(stateMachineArn=machine["stateMachineArn"])[
            "executionArn"]

    def token(self) -> str:
        def sent() -> Any:
            return self.sqs.receive_message(QueueUrl=self.queue).get("Messages")

        return str(json.loads(eventually(sent, 10, "no task token was sent")[0]["Body"])["token"])

    def status(self) -> str:
        return str(self.sfn.describe_execution(executionArn=self.execution)["status"])

    def ended(self, seconds: float = 10) -> str:
        return eventually(lambda: self.status() != "RUNNING" and self.status(), seconds,
                          "the execution never ended")


# --- Step Functions --------------------------------------------------------------------
@covers(f"{BACKEND}.send_task_success", f"{BACKEND}.send_task_failure")
def test_moto_accepts_a_second_answer_to_a_task_token(moto):
    # AWS: TaskTimedOut for a token already answered (scripts/local/aws.py)
    wait = TokenWait(moto, then={"Type": "Wait", "Seconds": 2, "End": True})
    token = wait.token()
    wait.sfn.send_task_success(taskToken=token, output="{}")

    wait.sfn.send_task_success(taskToken=token, output="{}")
    wait.sfn.send_task_failure(taskToken=token, error="Late")


@covers(f"{SFN}.asl.component.state.exec.execute_state.ExecutionState._evaluate_with_timeout",
        f"{SFN}.asl.component.state.exec.state_task.service.state_task_service_callback."
        "StateTaskServiceCallback._wait_for_task_token_timeout")
def test_moto_times_out_a_task_whose_accepted_answer_is_still_being_handed_on(moto, monkeypatch):
    # AWS: an accepted answer is the task's result, whenever its timer runs out
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
        StateTaskServiceCallback,
    )

    moto_wait = StateTaskServiceCallback._wait_for_task_token_timeout

    def slow_hand_on(state: Any, timeout_seconds: int, endpoint: Any) -> Any:
        outcome = moto_wait(state, timeout_seconds, endpoint)
        time.sleep(2)  # the answer is in; handing it on takes longer than the timer has left
        return outcome

    monkeypatch.setattr(StateTaskServiceCallback, "_wait_for_task_token_timeout", slow_hand_on)
    wait = TokenWait(moto, timeout_seconds=1)
    wait.sfn.send_task_success(taskToken=wait.token(), output="{}")  # accepted, in time

    assert wait.ended() == "FAILED"
    failure = wait.sfn.describe_execution(executionArn=wait.execution)
    assert failure.get("error") == "States.Timeout"


@covers(f"{SFN}.backend.execution.Execution.stop")
def test_moto_keeps_a_stopped_execution_running_while_it_waits_for_a_token(moto):
    # AWS: StopExecution aborts it at once (scripts/local/executions.py)
    wait = TokenWait(moto)
    wait.token()

    wait.sfn.stop_execution(executionArn=wait.execution)

    time.sleep(0.5)
    assert wait.status() == "RUNNING"


@covers(f"{SFN}.asl.eval.environment.Environment.set_error")
def test_moto_turns_a_stopped_execution_failed_when_its_waiting_task_fails(moto):
    # AWS: a stopped execution is ABORTED, whatever its tasks do afterwards
    wait = TokenWait(moto)
    token = wait.token()
    wait.sfn.stop_execution(executionArn=wait.execution)

    wait.sfn.send_task_failure(taskToken=token, error="Woken")

    assert wait.ended() == "FAILED"


@covers(f"{SFN}.asl.component.state.exec.state_task.lambda_eval_utils.boto_client_for")
def test_moto_builds_a_new_client_for_every_lambda_task(moto):
    # not a difference from AWS: a cost (scripts/local/aws.py, reuse_lambda_clients_of_the_engine)
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    boto3.setup_default_session(region_name=REGION)  # as the local stack has one
    first = lambda_eval_utils.boto_client_for(region=REGION, service="lambda")
    second = lambda_eval_utils.boto_client_for(region=REGION, service="lambda")

    assert first is not second


@covers(f"{BACKEND}._validate_definition",
        f"{SFN}.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint")
def test_moto_parses_a_definition_again_on_every_create_and_every_execution(moto, monkeypatch):
    # not a difference from AWS: a cost (scripts/local/aws.py, parse_each_definition_once)
    from moto.stepfunctions.parser.asl.parse import asl_parser

    parsed = []
    parse = asl_parser.AmazonStateLanguageParser.parse
    monkeypatch.setattr(asl_parser.AmazonStateLanguageParser, "parse",
                        staticmethod(lambda definition: parsed.append(definition) or parse(definition)))
    sfn = moto.client("stepfunctions")
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    arns = [sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"]
            for name in ("first", "second")]
    executions = [sfn.start_execution(stateMachineArn=arns[0], name=name)["executionArn"]
                  for name in ("one", "two")]
    eventually(lambda: all(sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
                           for arn in executions), 10, "the executions did not end")

    assert parsed == [definition] * 4


def test_patched_each_definition_is_parsed_once_and_bad_ones_are_still_refused(monkeypatch):
    from moto.stepfunctions.parser.asl.parse import asl_parser

    parsed = []
    parse = asl_parser.AmazonStateLanguageParser.parse
    monkeypatch.setattr(asl_parser.AmazonStateLanguageParser, "parse",
                        staticmethod(lambda definition: parsed.append(definition) or parse(definition)))
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        # a Pass state that changes its input: a shared tree would show the first run's output
        definition = json.dumps({"StartAt": "Add", "States": {"Add": {
            "Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "End": True}}})
        arn = sfn.create_state_machine(name="once", definition=definition, roleArn=ROLE)["stateMachineArn"]
        sfn.create_state_machine(name="again", definition=definition, roleArn=ROLE)
        runs = {n: sfn.start_execution(stateMachineArn=arn, name=f"n{n}", input=json.dumps({"n": n}))
                ["executionArn"] for n in (1, 10)}
        eventually(lambda: all(sfn.describe_execution(executionArn=a)["status"] == "SUCCEEDED"
                               for a in runs.values()), 10, "the executions did not end")
        outputs = {n: json.loads(sfn.describe_execution(executionArn=a)["output"])["n"]
                   for n, a in runs.items()}
        bad = json.dumps({"StartAt": "Nowhere", "States": {"Done": {"Type": "Sucede"}}})
        for name in ("bad1", "bad2"):
            with pytest.raises(ClientError, match="ASLParserException"):
                sfn.create_state_machine(name=name, definition=bad, roleArn=ROLE)

    assert outputs == {1: 2, 10: 11}
    assert parsed.count(definition) == 2  # once to validate, once for the first execution
    assert parsed.count(bad) == 2


@covers("moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host")
def test_moto_server_looks_up_the_backend_of_a_host_on_every_request(monkeypatch):
    # not a difference from AWS: a lock every request queues on (remember_backends_by_host)
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    looked_up = []
    listing = backends.list_of_moto_modules

    def counted() -> Any:
        looked_up.append(1)
        return listing()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    dispatcher = DomainDispatcherApplication(create_backend_app)
    with as_released():
        dispatcher.get_backend_for_host("dynamodb")
        dispatcher.get_backend_for_host("dynamodb")

    assert len(looked_up) == 2


# --- SES ----------------------------------------------------------------------------------
@pytest.fixture
def quotas_enforced() -> Iterator[None]:
    """What the SES patches do with LOCAL_ENFORCE_SES_QUOTAS=1 (as released, nothing)."""
    reproduce_ses_contact_lists(enforce_quotas=True)
    yield
    reproduce_ses_contact_lists(enforce_quotas=False)


@covers(f"{SES}.create_contact_list")
def test_moto_creates_a_contact_list_twice_and_beyond_the_quota(moto, quotas_enforced):
    # AWS: AlreadyExistsException, and LimitExceededException past one list (scripts/local/ses.py)
    ses = moto.client("sesv2")
    ses.create_contact_list(ContactListName="first")
    ses.create_contact_list(ContactListName="first")
    ses.create_contact_list(ContactListName="second")

    assert len(ses.list_contact_lists()["ContactLists"]) == 2


@covers(f"{SES}.update_contact_list")
def test_moto_takes_more_than_twenty_topics_on_a_list(moto, quotas_enforced):
    # AWS: LimitExceededException past 20 topics
    ses = moto.client("sesv2")
    ses.create_contact_list(ContactListName="shared")
    topics = [{"TopicName": f"t{n}", "DisplayName": f"t{n}", "DefaultSubscriptionStatus": "OPT_OUT"}
              for n in range(21)]

    ses.update_contact_list(ContactListName="shared", Topics=topics)

    assert len(ses.get_contact_list(ContactListName="shared")["Topics"]) == 21


TENANT_OPERATIONS = ("create_tenant", "get_tenant", "delete_tenant", "list_tenants",
                     "create_tenant_resource_association")


@covers(*(f"moto.sesv2.responses.SESV2Response.{operation}" for operation in TENANT_OPERATIONS),
        "moto.sesv2.urls.url_paths")
def test_moto_has_no_ses_tenants(moto):
    # AWS: CreateTenant, GetTenant, ListTenants, DeleteTenant (scripts/local/ses.py)
    from moto.sesv2 import urls
    from moto.sesv2.responses import SESV2Response

    assert not [operation for operation in TENANT_OPERATIONS if hasattr(SESV2Response, operation)]
    assert not [path for path in urls.url_paths if "tenants" in path]  # the server has no route
    with pytest.raises(NotImplementedError):
        moto.client("sesv2").create_tenant(TenantName="tenant-canary")


# --- EventBridge to SNS, and SNS email (scripts/local/sns.py) --------------------------------
@pytest.fixture
def topic(moto) -> str:
    return str(moto.client("sns").create_topic(Name="canary")["TopicArn"])


@covers("moto.events.models.Rule.send_to_targets")
def test_moto_cannot_send_an_event_to_an_sns_topic(moto, topic):
    # AWS: the rule publishes the (transformed) event to the topic
    events = moto.client("events")
    events.put_rule(Name="to-topic", EventPattern=json.dumps({"source": ["canary"]}))
    events.put_targets(Rule="to-topic", Targets=[{"Id": "topic", "Arn": topic}])

    with pytest.raises(NotImplementedError):
        events.put_events(Entries=[{"Source": "canary", "DetailType": "x", "Detail": "{}"}])


@covers("moto.sns.models.SNSBackend.subscribe")
def test_moto_confirms_an_email_subscription_at_once(moto, topic):
    # AWS: pending until the address opens the link SNS mails it
    sns = moto.client("sns")
    arn = sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")[
        "SubscriptionArn"]

    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["PendingConfirmation"] == "false"


@covers("moto.sns.responses.SNSResponse.confirm_subscription")
def test_moto_confirms_a_subscription_with_a_token_it_never_sent(moto, topic):
    # AWS: InvalidParameter for a token it did not mail
    sns = moto.client("sns")
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")

    assert sns.confirm_subscription(TopicArn=topic, Token="never-sent")["SubscriptionArn"]


@covers("moto.sns.models.Subscription.publish")
def test_moto_mails_nothing_to_an_email_subscription(moto, topic):
    # AWS: each message goes to every confirmed email subscription; moto has no
    # branch for email in its delivery, so it goes nowhere
    import inspect

    from moto.sns.models import Subscription

    sns = moto.client("sns")
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    sns.publish(TopicArn=topic, Message="hello")

    assert '"email"' not in inspect.getsource(Subscription.publish)


@covers("moto.sesv2.responses.SESV2Response.send_email")
def test_moto_sends_in_an_ses_tenant_that_does_not_exist(moto):
    # AWS: NotFoundException for a TenantName it does not know (scripts/local/ses.py)
    ses = moto.client("sesv2")
    ses.create_email_identity(EmailIdentity="example.com")

    sent = ses.send_email(FromEmailAddress="onboarding@example.com",
                          Destination={"ToAddresses": ["tenant@example.org"]},
                          Content={"Simple": {"Subject": {"Data": "s"},
                                              "Body": {"Text": {"Data": "b"}}}},
                          TenantName="tenant-nobody")

    assert sent["MessageId"]


# --- DynamoDB -------------------------------------------------------------------------------
KEY = {"pk": {"S": "item"}, "sk": {"S": "one"}}
WRITES = {
    "put_item": lambda ddb: ddb.put_item(
        TableName="t", Item={**KEY, "v": {"S": "x"}}, ConditionExpression="attribute_not_exists(pk)"),
    "update_item": lambda ddb: ddb.update_item(
        TableName="t", Key=KEY, UpdateExpression="SET v = :v",
        ConditionExpression="attribute_not_exists(v)", ExpressionAttributeValues={":v": {"S": "x"}}),
    "delete_item": lambda ddb: ddb.delete_item(
        TableName="t", Key=KEY, ConditionExpression="attribute_exists(pk)"),
    "transact_write_items": lambda ddb: ddb.transact_write_items(TransactItems=[{"Update": {
        "TableName": "t", "Key": KEY, "UpdateExpression": "SET v = :v",
        "ConditionExpression": "attribute_not_exists(v)",
        "ExpressionAttributeValues": {":v": {"S": "x"}}}}]),
}


def create_table(ddb: Any) -> None:
    """A table "t" keyed as the tenant table is (pk, sk)."""
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}])


@pytest.mark.parametrize("write", sorted(WRITES))
def test_moto_lets_two_conditional_writes_both_pass_their_condition(moto, monkeypatch, write):
    # AWS: a conditional write checks and writes as one step; of two racing, one wins
    from moto.dynamodb.models.table import Table

    ddb = moto.client("dynamodb")
    create_table(ddb)
    if write == "delete_item":
        ddb.put_item(TableName="t", Item=KEY)
    # each read of the item waits for the other writer's same read: both have
    # read it before either writes (broken if moto lets one write in at a time)
    in_step = threading.Barrier(2, timeout=5)
    read_item = Table.get_item

    def read_in_step(table: Any, *args: Any, **kwargs: Any) -> Any:
        item = read_item(table, *args, **kwargs)
        if threading.current_thread().name.startswith("racer-"):
            in_step.wait()
        return item

    monkeypatch.setattr(Table, "get_item", read_in_step)
    results = []

    def race() -> None:
        try:
            WRITES[write](ddb)
            results.append("written")
        except Exception as error:  # noqa: BLE001 - what moto answered is the finding
            results.append(type(error).__name__)

    threads = [threading.Thread(target=race, name=f"racer-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert results == ["written", "written"]


for _write in WRITES:
    CANARIES[f"{DYNAMODB}.{_write}"] = "test_moto_lets_two_conditional_writes_both_pass_their_condition"



@covers("moto.dynamodb.responses.DynamoHandler.call_action")
def test_moto_lets_a_write_change_an_item_while_a_read_is_answering_it(moto, monkeypatch):
    # AWS: a read sees an item whole, before or after a write, never during it
    from moto.dynamodb import responses

    ddb = moto.client("dynamodb")
    create_table(ddb)
    ddb.put_item(TableName="t", Item={**KEY, "v": {"S": "x"}})
    answering, written = threading.Event(), threading.Event()
    to_json = responses.dynamo_to_dict

    def answer_slowly(result: Any) -> Any:
        # the reader has its item from the backend and is about to answer:
        # can a write get in now? (2 s: a write held back never does)
        if threading.current_thread().name == "reader" and not answering.is_set():
            answering.set()
            written.wait(timeout=2)
        return to_json(result)

    monkeypatch.setattr(responses, "dynamo_to_dict", answer_slowly)
    reader = threading.Thread(target=lambda: ddb.get_item(TableName="t", Key=KEY), name="reader")
    reader.start()
    assert answering.wait(timeout=5)

    def write() -> None:
        ddb.update_item(TableName="t", Key=KEY, UpdateExpression="SET v = :v",
                        ExpressionAttributeValues={":v": {"S": "y"}})
        written.set()

    writer = threading.Thread(target=write)
    writer.start()
    interleaved = written.wait(timeout=1)
    reader.join(timeout=10)
    writer.join(timeout=10)

    assert interleaved

# --- the registry itself ----------------------------------------------------------------------
def test_every_patch_has_a_canary():
    assert set(replaced()) == set(CANARIES)


def test_another_moto_is_refused_in_one_line(monkeypatch):
    from importlib import metadata

    monkeypatch.setattr(metadata, "version", lambda package: "5.2.1")

    with pytest.raises(MotoVersionError) as refused:
        check_moto_version()

    assert str(refused.value).count("\n") == 0
    assert MOTO_VERSION in str(refused.value) and "5.2.1" in str(refused.value)


def test_moto_copies_a_whole_table_for_every_item_of_a_transaction(moto, monkeypatch):
    # not a difference from AWS: a cost (scripts/local/dynamodb.py, _copying_once)
    from moto.dynamodb import models

    ddb = moto.client("dynamodb")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    copied = []
    deepcopy = models.copy.deepcopy
    monkeypatch.setattr(models.copy, "deepcopy", lambda value, *a: copied.append(1) or deepcopy(value, *a))

    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": "t", "Item": {"pk": {"S": str(n)}}}} for n in range(3)])

    assert len(copied) == 3
