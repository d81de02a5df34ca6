"""A stage's resources on an emulated AWS, created from template.json itself.

The deploy hands template.json (merged with the Chalice app) to
CloudFormation; here the same resource properties, with their intrinsic
functions resolved, become the API calls CloudFormation would make, so the
local stack and a deployed stage cannot drift. The Chalice functions are not
created (their invocations are answered in process, scripts/local/lambdas.py):
their ARNs come from the FunctionName the template gives them.

Used by the local stack (make run) and the workflow-test harness.
"""
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.settings import SUBSCRIBER_STORE
from scripts.deploy import template as stack_template
from scripts.deploy.template import Resolver, TemplateError, app_functions
from scripts.shared import LOCAL_ACCOUNT, LOCAL_REGION, stack_name

LOCAL_REST_API = "local-api"  # RestAPI's Ref for the resolver: the local API has no id
# A stage's SES sender here, unless .chalice/config.json gives it one (ses_sender): the
# local SES verifies it, so the app's mail goes out, to the outbox, as from a real
# sender. Not in config.json: no committed file names an account (a deployed stage
# without ses_sender sends no mail).
LOCAL_SES_SENDER = stack_template.SesSender(
    "onboarding@example.com", f"arn:aws:ses:{LOCAL_REGION}:{LOCAL_ACCOUNT}:identity/example.com")


def local_ses_sender(stage: str) -> stack_template.SesSender:
    return stack_template.stage_ses_sender(stage) or LOCAL_SES_SENDER


@dataclass
class StageResources:
    """What the emulated stage is made of: physical ids, ARNs and the functions' environment."""

    stage: str
    region: str
    account: str
    physical_ids: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    function_names: dict[str, str] = field(default_factory=dict)  # chalice name -> deployed name
    # template.json's Outputs, resolved, under the keys a deploy writes them with
    stack_outputs: dict[str, str] = field(default_factory=dict)
    # each state machine's properties, resolved: to make it again (replace_state_machines)
    state_machines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ref(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]

    def physical(self, logical_id: str, attribute: str | None) -> str:
        """Ref (attribute None) and Fn::GetAtt of a resource this stage made."""
        if attribute is None:
            return self.physical_ids[logical_id]
        return self.attributes[logical_id][attribute]

    def environment_for(self, contact_list_mode: str, stripe: bool) -> dict[str, str]:
        """The functions' environment had the stack these parameters (they
        change settings only, not what the stage is made of)."""
        template = stack_template.load_template()
        resolver = Resolver(template, stage_parameters(self.stage, contact_list_mode, stripe),
                            self.region, self.account, self.physical)
        return function_environment(template, resolver, self.stage)

    def outputs(self) -> dict[str, str]:
        return dict(self.stack_outputs)


def _tags(tags: Any) -> list:
    return [{"Key": t["Key"], "Value": t["Value"]} for t in tags or []]


def _lower_first(value: Any) -> Any:
    """CloudFormation's LoggingConfiguration keys -> the Step Functions API's."""
    if isinstance(value, list):
        return [_lower_first(item) for item in value]
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _lower_first(item) for key, item in value.items()}
    return value


class _Creator:
    def __init__(
        self, session: Any, resources: StageResources, definitions: dict[str, dict[str, Any]]
    ) -> None:
        self._session = session
        self._resources = resources
        self._definitions = definitions  # by the state machine's logical id

    def client(self, service: str) -> Any:
        return self._session.client(service)

    # each: properties (resolved) -> (physical id, attributes)
    def table(self, p: dict[str, Any]):
        ddb = self.client("dynamodb")
        pitr = p.pop("PointInTimeRecoverySpecification", None)
        p["Tags"] = _tags(p.get("Tags"))
        arn = ddb.create_table(**p)["TableDescription"]["TableArn"]
        ddb.get_waiter("table_exists").wait(TableName=p["TableName"])
        if pitr:
            ddb.update_continuous_backups(
                TableName=p["TableName"], PointInTimeRecoverySpecification=pitr
            )
        return p["TableName"], {"Arn": arn}

    def event_bus(self, p: dict[str, Any]):
        arn = self.client("events").create_event_bus(Name=p["Name"])["EventBusArn"]
        return p["Name"], {"Arn": arn, "Name": p["Name"]}

    def log_group(self, p: dict[str, Any]):
        logs = self.client("logs")
        logs.create_log_group(logGroupName=p["LogGroupName"])
        if p.get("RetentionInDays"):
            logs.put_retention_policy(
                logGroupName=p["LogGroupName"], retentionInDays=p["RetentionInDays"]
            )
        r = self._resources
        arn = f"arn:aws:logs:{r.region}:{r.account}:log-group:{p['LogGroupName']}:*"
        return p["LogGroupName"], {"Arn": arn}

    def role(self, p: dict[str, Any], logical_id: str):
        iam = self.client("iam")
        name = f"{stack_name(self._resources.stage)}-{logical_id}"[:64]
        arn = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
        for policy in p.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
        return name, {"Arn": arn}

    def state_machine(self, p: dict[str, Any], logical_id: str):
        self._resources.state_machines[logical_id] = json.loads(json.dumps(p))
        definition = stack_template.substitute(
            self._definitions[logical_id], p["DefinitionSubstitutions"])
        arn = self.client("stepfunctions").create_state_machine(
            name=p["StateMachineName"],
            definition=json.dumps(definition),
            roleArn=p["RoleArn"],
            type=p.get("StateMachineType", "STANDARD"),
            loggingConfiguration=_lower_first(p.get("LoggingConfiguration") or {}),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in p.get("Tags", [])],
        )["stateMachineArn"]
        return arn, {"Arn": arn, "Name": p["StateMachineName"]}

    def user_pool(self, p: dict[str, Any]):
        p["PoolName"] = p.pop("UserPoolName")
        pool = self.client("cognito-idp").create_user_pool(**p)["UserPool"]
        return pool["Id"], {"Arn": pool["Arn"], "ProviderName": pool.get("ProviderName", "")}

    def user_pool_client(self, p: dict[str, Any]):
        client = self.client("cognito-idp").create_user_pool_client(**p)["UserPoolClient"]
        return client["ClientId"], {"Name": client["ClientName"]}

    def topic(self, p: dict[str, Any]):
        attributes = {"DisplayName": p["DisplayName"]} if p.get("DisplayName") else {}
        arn = self.client("sns").create_topic(
            Name=p["TopicName"], Attributes=attributes, Tags=_tags(p.get("Tags")))["TopicArn"]
        return arn, {"TopicArn": arn, "TopicName": p["TopicName"]}

    def rule(self, p: dict[str, Any]):
        events = self.client("events")
        bus = p.get("EventBusName", "default")
        arn = events.put_rule(
            Name=p["Name"], EventBusName=bus, EventPattern=json.dumps(p["EventPattern"]),
            State=p.get("State", "ENABLED"), Description=p.get("Description", ""),
        )["RuleArn"]
        events.put_targets(Rule=p["Name"], EventBusName=bus, Targets=p["Targets"])
        # Ref of a rule on a custom bus, as CloudFormation answers it
        return (p["Name"] if bus == "default" else f"{bus}|{p['Name']}"), {"Arn": arn}


_CREATORS: dict[str, Callable[..., Any]] = {
    "AWS::DynamoDB::Table": _Creator.table,
    "AWS::Events::EventBus": _Creator.event_bus,
    "AWS::Logs::LogGroup": _Creator.log_group,
    "AWS::IAM::Role": _Creator.role,
    "AWS::StepFunctions::StateMachine": _Creator.state_machine,
    "AWS::Cognito::UserPool": _Creator.user_pool,
    "AWS::Cognito::UserPoolClient": _Creator.user_pool_client,
    "AWS::SNS::Topic": _Creator.topic,
    "AWS::Events::Rule": _Creator.rule,
}
_NAMED_BY_LOGICAL_ID = {"AWS::IAM::Role", "AWS::StepFunctions::StateMachine"}
# Declared in the template, with nothing to emulate, and why.
_NOT_EMULATED = {
    "AWS::Lambda::Permission": "Lambda answers every invocation in process: a permission to "
                               "invoke changes nothing here",
    "AWS::SNS::TopicPolicy": "moto enforces no resource policy: the rules' targets publish to "
                             "the topic here whatever it says (tests/functional/deploy checks it)",
}
# A local API stands in for the deployed one; its URL when the caller names none.
DEFAULT_LOCAL_API_URL = "http://127.0.0.1:8000"


def provision_stage(
    session: Any,
    stage: str,
    account: str,
    contact_list_mode: str = SUBSCRIBER_STORE,
    stripe: bool = False,
    approval_timeout_seconds: int | None = None,
    retry_interval_seconds: int | None = None,
    api_url: str = DEFAULT_LOCAL_API_URL,
) -> StageResources:
    """Create every resource template.json declares, as CloudFormation would,
    with the waits ``_definitions`` describes. ``api_url``: the local API,
    where the deployed API's URL appears (the admin notifications' console link)."""
    template = stack_template.load_template()
    resources = StageResources(stage=stage, region=session.region_name, account=account)
    definitions = _definitions(approval_timeout_seconds, retry_interval_seconds)
    creator = _Creator(session, resources, definitions)
    resolver = Resolver(template, stage_parameters(stage, contact_list_mode, stripe),
                        resources.region, account, resources.physical,
                        stand_ins=[(stack_template.DEPLOYED_API_URL, api_url)])
    declared = template["Resources"]
    for chalice_name, logical_id in app_functions().items():
        name = resolver.resolve(declared[logical_id]["Properties"]["FunctionName"])
        resources.function_names[chalice_name] = name
        resources.physical_ids[logical_id] = name
        resources.attributes[logical_id] = {
            "Arn": f"arn:aws:lambda:{resources.region}:{account}:function:{name}"
        }
    # Chalice's API is served in process (scripts/local/gateway.py), with no id of its
    # own: its URL (the console links, SIGNUP_PAGE_URL) resolves to api_url instead.
    resources.physical_ids["RestAPI"] = LOCAL_REST_API
    typed = [name for name, spec in declared.items() if "Type" in spec]
    for logical_id in stack_template.creation_order(declared, typed):
        spec = declared[logical_id]
        kind = spec["Type"]
        if kind in _NOT_EMULATED:
            continue
        create = _CREATORS.get(kind)
        if create is None:
            raise TemplateError(
                f"template.json declares {logical_id} ({kind}), which the local stack "
                "cannot emulate yet: add it to scripts/local/resources.py"
            )
        properties = resolver.resolve(spec.get("Properties", {}))
        args = (logical_id,) if kind in _NAMED_BY_LOGICAL_ID else ()
        physical_id, attributes = create(creator, properties, *args)
        resources.physical_ids[logical_id] = physical_id
        resources.attributes[logical_id] = attributes
    resources.environment = function_environment(template, resolver, stage)
    verify_ses_sender(session, stage)
    resources.stack_outputs = {
        stack_template.OUTPUT_KEYS[name]: str(resolver.resolve(output["Value"]))
        for name, output in template.get("Outputs", {}).items()
    }
    return resources


def verify_ses_sender(session: Any, stage: str) -> None:
    """The stage's SES sender (``local_ses_sender``), verified in SES: in AWS, by its
    owner outside the stack (docs/deploy.md); here, as the stage is made, so the
    app's mail goes out (to the outbox) as it would from a verified sender."""
    identity = local_ses_sender(stage).identity_arn.split(":identity/", 1)[1]
    session.client("sesv2").create_email_identity(EmailIdentity=identity)


def replace_state_machines(
    session: Any,
    resources: StageResources,
    approval_timeout_seconds: int | None = None,
    retry_interval_seconds: int | None = None,
) -> None:
    """Delete the stage's state machines, and with them every execution they
    ran, and make them again as the template declares them, with these waits.
    Under the same names, so with the same ARNs: nothing else changes."""
    sfn = session.client("stepfunctions")
    creator = _Creator(session, resources,
                       _definitions(approval_timeout_seconds, retry_interval_seconds))
    for logical_id, properties in list(resources.state_machines.items()):
        sfn.delete_state_machine(stateMachineArn=resources.ref(logical_id))
        arn, attributes = creator.state_machine(json.loads(json.dumps(properties)), logical_id)
        resources.physical_ids[logical_id] = arn
        resources.attributes[logical_id] = attributes


def stage_parameters(stage: str, contact_list_mode: str, stripe: bool) -> dict[str, str]:
    """The stack's parameters, as make package sets them for a stage, with an
    SES sender always (``local_ses_sender``): the local stack's mail goes to its outbox."""
    return {"Stage": stage, "ContactListMode": contact_list_mode, "Stripe": "on" if stripe else "off",
            **local_ses_sender(stage).parameters()}


def _definitions(
    approval_timeout_seconds: int | None, retry_interval_seconds: int | None
) -> dict[str, dict[str, Any]]:
    """Each state machine's definition by logical id. ``approval_timeout_seconds``
    shortens the 24-hour wait and ``retry_interval_seconds`` the waits between
    retries (tests, trying timeouts and faults locally)."""
    definitions = {
        logical_id: stack_template.load_definition(logical_id=logical_id)
        for logical_id in stack_template.DEFINITIONS
    }
    if approval_timeout_seconds:
        stack_template.shorten_wait(definitions[stack_template.STATE_MACHINE],
                                    approval_timeout_seconds)
    if retry_interval_seconds:
        for definition in definitions.values():
            stack_template.shorten_retries(definition, retry_interval_seconds)
    return definitions


def function_environment(template: dict[str, Any], resolver: Resolver, stage: str) -> dict[str, str]:
    """The environment every function of the stage gets, in one process.

    SAM's Globals, then each function's own variables from template.json,
    then .chalice/config.json's (as chalice package would write them).
    """
    env: dict[str, str] = {}
    env.update(resolver.resolve(template["Globals"]["Function"]["Environment"]["Variables"]))
    for logical_id in app_functions().values():
        own = template["Resources"][logical_id]["Properties"].get("Environment", {})
        env.update(resolver.resolve(own.get("Variables", {})))
    env.update(stack_template.stage_environment(stage))
    return {key: str(value) for key, value in env.items()}
