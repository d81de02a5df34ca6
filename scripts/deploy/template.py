"""The stage's CloudFormation template, read by the deploy and the local stack alike.

``template.json`` (project root) declares every resource of a stage that the
Chalice app does not: the tenant table, the event bus, the state machine and
its role and log group, the Cognito user pool and client, each function's
role and log group, the trigger's permission. ``make package`` merges it
with ``chalice package``'s output; the local stack creates its emulated
resources from the same resource properties (scripts/local/resources.py),
resolving the template's intrinsic functions with ``Resolver``.

Not shipped to Lambda (Chalice packages only app.py and chalicelib/).
"""
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.settings import CONTACT_LIST_MODES
from scripts.shared import PROJECT_DIR, stack_name

TEMPLATE_PATH = PROJECT_DIR / "template.json"
STATE_MACHINE = "StateMachine"  # logical id in template.json
# Each state machine of the template and the file that defines it.
DEFINITIONS = {STATE_MACHINE: "statemachine.json", "OffboardingStateMachine": "offboarding.json"}
WAIT_STATE = "Wait For Callback"
# The deployed API's URL as template.json writes it (chalice package's RestAPI, stage api):
# the admin notifications' console link. The local stack reads it as its own API's URL.
DEPLOYED_API_URL = {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")

@functools.cache
def app_functions() -> dict[str, str]:
    """Each Lambda function of the app (its Chalice name) -> the logical id
    ``chalice package`` gives it, read from the app as Chalice reads it."""
    from chalice.utils import to_cfn_resource_name

    import app

    declared = app.app
    names = {"api_handler": "APIHandler"} if declared.routes else {}
    for name in [f.name for f in declared.pure_lambda_functions] + [
            source.name for source in declared.event_sources]:
        names[name] = to_cfn_resource_name(name)
    return names


class TemplateError(RuntimeError):
    """template.json, statemachine.json or the stage's configuration is unusable."""


# --- the stage's name ------------------------------------------------------------------
LAMBDA_FUNCTION_NAME_LIMIT = 64  # characters, Lambda's own limit
_STAGE_NAME = re.compile(r"[a-z][a-z0-9-]*")


def function_name(stage: str, function: str) -> str:
    """What a function of the app is called in a stage (template.json's FunctionName)."""
    return f"{stack_name(stage)}-{function}"


def longest_stage_name() -> int:
    """How long a stage's name may be: the app's longest function name must
    still fit Lambda's limit. template.json's Stage pattern says the same (a test checks)."""
    longest = max(app_functions(), key=len)
    return LAMBDA_FUNCTION_NAME_LIMIT - len(function_name("", longest))


def check_stage_name(stage: str) -> None:
    """Refuse, in one line, a stage CloudFormation or Lambda would refuse half-way."""
    if not _STAGE_NAME.fullmatch(stage):
        raise TemplateError(
            f'stage "{stage}" is not a stage name: lowercase letters, digits and "-", '
            "starting with a letter"
        )
    limit = longest_stage_name()
    if len(stage) > limit:
        longest = function_name(stage, max(app_functions(), key=len))
        raise TemplateError(
            f'stage "{stage}" has {len(stage)} characters, and at most {limit} fit: its function '
            f"{longest} would have {len(longest)} characters, over Lambda's limit of "
            f"{LAMBDA_FUNCTION_NAME_LIMIT}"
        )


def load_template(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    return json.loads((project_dir / TEMPLATE_PATH.name).read_text())


def load_definition(
    project_dir: Path = PROJECT_DIR, logical_id: str = STATE_MACHINE
) -> dict[str, Any]:
    return json.loads((project_dir / DEFINITIONS[logical_id]).read_text())


def placeholders(value: Any) -> set[str]:
    """Every ``${Name}`` in a definition (a dict or its JSON text)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return set(_PLACEHOLDER.findall(text))


def unsubstituted(definition: Any, substitutions: Mapping[str, Any]) -> set[str]:
    return placeholders(definition) - set(substitutions)


def substitute(definition: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """What Step Functions does with DefinitionSubstitutions."""
    missing = unsubstituted(definition, values)
    if missing:
        raise TemplateError(f"no value for placeholder(s): {', '.join(sorted(missing))}")
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], json.dumps(definition))
    return json.loads(text)


def shorten_wait(definition: dict[str, Any], seconds: int) -> dict[str, Any]:
    """The approval window cut to ``seconds``: for tests and trying timeouts locally."""
    wait = definition["States"][WAIT_STATE]
    wait["TimeoutSeconds"] = int(seconds)
    wait["Parameters"]["Payload"]["approvalWindowSeconds"] = int(seconds)
    return definition


def shorten_retries(definition: dict[str, Any], seconds: int) -> dict[str, Any]:
    """Every Retry waits ``seconds`` between attempts, without backoff: tests
    and the local stack try failure paths in seconds, not minutes. The number
    of attempts and what is retried stay as deployed."""
    for state in definition["States"].values():
        for rule in state.get("Retry", []):
            if rule.get("MaxAttempts", 3) == 0:
                continue
            rule["IntervalSeconds"] = int(seconds)
            rule["BackoffRate"] = 1
            if "MaxDelaySeconds" in rule:
                rule["MaxDelaySeconds"] = int(seconds)
    return definition


# The property holding the name of each kind of resource the stack retains.
_NAME_PROPERTY = {"AWS::DynamoDB::Table": "TableName", "AWS::Cognito::UserPool": "UserPoolName"}


def retained_names(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """What template.json names the stage's retained resources (DeletionPolicy
    Retain), by logical id: the data a stack deletion keeps."""
    template = load_template(project_dir)
    resolver = _stage_only_resolver(template, stage)
    return {
        logical_id: resolver.resolve(spec["Properties"][_NAME_PROPERTY[spec["Type"]]])
        for logical_id, spec in template["Resources"].items()
        if spec.get("DeletionPolicy") == "Retain"
    }


def shared_contact_list_name(stage: str, project_dir: Path = PROJECT_DIR) -> str:
    """The stage's shared SES list (topic-per-tenant), as template.json names it."""
    template = load_template(project_dir)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    return _stage_only_resolver(template, stage).resolve(variables["SHARED_CONTACT_LIST_NAME"])


def _stage_only_resolver(template: dict[str, Any], stage: str) -> "Resolver":
    """For values that depend on the stage alone (names): no resource, region or account."""
    def no_resource(logical_id: str, attribute: str | None) -> str:
        raise TemplateError(f"{logical_id} is a resource: its value is known only once made")

    return Resolver(template, {"Stage": stage}, "", "", no_resource)


# template.json's Outputs -> the keys of .chalice/outputs-<stage>.json and .local/stack.json
OUTPUT_KEYS = {
    "UserPoolId": "userPoolId",
    "UserPoolClientId": "userPoolClientId",
    "StateMachineArn": "stateMachineArn",
    "OffboardingStateMachineArn": "offboardingStateMachineArn",
    "TenantTableName": "tableName",
    "EventBusName": "eventBusName",
    "ReconcileFunctionName": "reconcileFunction",
    "AdminUserPoolId": "adminUserPoolId",
    "AdminUserPoolClientId": "adminUserPoolClientId",
    "AdminNotificationsTopicArn": "adminNotificationsTopicArn",
}


def stage_config(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    return _stage_and_app_config(stage, project_dir)[0]


def stage_environment(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """The environment .chalice/config.json gives a stage's functions: the app's
    variables, then the stage's over them (as chalice package writes them)."""
    stage_values, config = _stage_and_app_config(stage, project_dir)
    return {**(config.get("environment_variables") or {}),
            **(stage_values.get("environment_variables") or {})}


def _stage_and_app_config(stage: str, project_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise TemplateError(
            f'stage "{stage}" is not in .chalice/config.json; add it (copy the "dev" block)'
        )
    return config["stages"][stage], config


# --- Cognito's mail ----------------------------------------------------------------------
# Quotas in Amazon Cognito ("Email messages sent daily per AWS account", checked 2026-12):
# what both pools may send together with Cognito's own email; not adjustable.
COGNITO_DEFAULT_EMAILS_A_DAY = 50
SES_SENDER_KEY = "ses_sender"  # a stage's setting in .chalice/config.json
_ADDRESS = re.compile(r"[^@\s<>]+@([^@\s<>]+\.[^@\s<>]+)")
_SES_IDENTITY_ARN = re.compile(r"arn:aws[a-z-]*:ses:[a-z0-9-]+:[0-9]{12}:identity/(.+)")


@dataclass(frozen=True)
class SesSender:
    """A verified SES identity both user pools send their mail through."""

    address: str
    identity_arn: str

    def parameters(self) -> dict[str, str]:
        return {"SesSenderAddress": self.address, "SesSenderIdentityArn": self.identity_arn}


NO_SES_SENDER = {"SesSenderAddress": "", "SesSenderIdentityArn": ""}


def stage_ses_sender(stage: str, project_dir: Path = PROJECT_DIR) -> SesSender | None:
    """The stage's ``ses_sender`` ({"address": …, "identity_arn": …}), checked; None if unset."""
    setting = stage_config(stage, project_dir).get(SES_SENDER_KEY)
    if setting is None:
        return None
    where = f"{SES_SENDER_KEY} of stage {stage} in .chalice/config.json"
    if not isinstance(setting, dict) or set(setting) != {"address", "identity_arn"} or not all(
            isinstance(value, str) and value for value in setting.values()):
        raise TemplateError(
            f'{where} must be {{"address": "<the sender>", "identity_arn": "<its verified SES '
            'identity>"}, both set (or leave it out: Cognito\'s own email)'
        )
    address, arn = setting["address"].strip(), setting["identity_arn"].strip()
    domain = _ADDRESS.fullmatch(address)
    if domain is None:
        raise TemplateError(f"{where}: address {address!r} is not an email address")
    identity = _SES_IDENTITY_ARN.fullmatch(arn)
    if identity is None:
        raise TemplateError(
            f"{where}: identity_arn {arn!r} is not an SES identity's ARN "
            "(arn:aws:ses:<region>:<account>:identity/<address or domain>)"
        )
    name, sender_domain = identity.group(1).lower(), domain.group(1).lower()
    if name != address.lower() and not (sender_domain == name or sender_domain.endswith("." + name)):
        raise TemplateError(
            f"{where}: SES sends as {address} only through that address's identity or its "
            f"domain's, not through identity/{identity.group(1)}"
        )
    return SesSender(address, arn)


def ses_sender_parameters(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """The stack's SesSender* parameters for a stage: empty without a sender."""
    sender = stage_ses_sender(stage, project_dir)
    return sender.parameters() if sender else dict(NO_SES_SENDER)


# --- what the stack keeps and what it deletes --------------------------------------------
# Every log group goes with the stack: 30 days of operational logs, not the stage's data, and
# named after the stage, so one kept would stop the next stack of that stage from creating it.
LOG_GROUP_POLICY = "Delete"
# SAM gives each layer version its own logical id, so an update that changes the layer removes
# the old version's resource; CloudFormation removes it only in the cleanup after a successful
# update (a rollback still finds it), and only with Delete does it delete the version then.
LAYER_RETENTION_POLICY = "Delete"


def apply_deletion_policies(template: dict[str, Any]) -> None:
    """Give every log group and layer of the merged template (template.json's and
    those ``chalice package`` writes) an explicit DeletionPolicy and UpdateReplacePolicy."""
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Logs::LogGroup":
            resource.setdefault("DeletionPolicy", LOG_GROUP_POLICY)
            resource.setdefault("UpdateReplacePolicy", resource["DeletionPolicy"])
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            resource.setdefault("Properties", {})["RetentionPolicy"] = LAYER_RETENTION_POLICY
            resource["UpdateReplacePolicy"] = LAYER_RETENTION_POLICY


def stage_contact_list_mode(stage: str, project_dir: Path = PROJECT_DIR) -> str:
    """CONTACT_LIST_MODE of a stage in .chalice/config.json (default list-per-tenant)."""
    env = stage_environment(stage, project_dir)
    mode = env.get("CONTACT_LIST_MODE") or CONTACT_LIST_MODES[0]
    if mode not in CONTACT_LIST_MODES:
        raise TemplateError(
            f"CONTACT_LIST_MODE of stage {stage} is {mode!r}: expected one of "
            f"{', '.join(CONTACT_LIST_MODES)}"
        )
    return mode


# --- intrinsic functions ---------------------------------------------------------------
NO_VALUE = object()


class Resolver:
    """Evaluates the intrinsic functions template.json uses, as CloudFormation would.

    ``physical(logical_id, attribute)`` answers Ref (attribute None) and
    Fn::GetAtt for resources; parameters and pseudo parameters are answered
    here. Values of ``Fn::If`` that pick ``AWS::NoValue`` are dropped from
    the lists and objects holding them.
    """

    def __init__(
        self,
        template: dict[str, Any],
        parameters: Mapping[str, str],
        region: str,
        account: str,
        physical: Callable[[str, str | None], str],
        stand_ins: Iterable[tuple[Any, Any]] = (),
    ) -> None:
        """``stand_ins``: (a value as the template writes it, what it is here), for a
        value of a resource this emulation does not make (the local API's URL)."""
        self._stand_ins = {json.dumps(written, sort_keys=True): here for written, here in stand_ins}
        self._template = template
        self._parameters = {
            name: parameters.get(name, spec.get("Default"))
            for name, spec in template.get("Parameters", {}).items()
        }
        for name, value in self._parameters.items():
            if value is None:
                raise TemplateError(f"template parameter {name} has no value")
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name(self._parameters.get("Stage", "")),
        }
        self._physical = physical

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self._template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if self._stand_ins:
            key = json.dumps(value, sort_keys=True)
            if key in self._stand_ins:
                return self._stand_ins[key]
        if len(value) == 1:
            (key, argument), = value.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        return self._physical(name, None)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {key: self.resolve(item) for key, item in variables.items()}

        def value(match: "re.Match[str]") -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return str(self._physical(resource, attribute))
            return str(self.ref(name))

        return _PLACEHOLDER.sub(value, text)


_FUNCTIONS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, name: r.ref(name),
    "Fn::GetAtt": lambda r, arg: r._physical(arg[0], arg[1]),
    "Fn::Sub": lambda r, arg: r._sub(arg),
    "Fn::If": lambda r, arg: r.resolve(arg[1] if r.condition(arg[0]) else arg[2]),
    "Fn::Equals": lambda r, arg: r.resolve(arg[0]) == r.resolve(arg[1]),
    "Fn::Not": lambda r, arg: not r.resolve(arg[0]),
    "Fn::And": lambda r, arg: all(r.resolve(item) for item in arg),
    "Fn::Or": lambda r, arg: any(r.resolve(item) for item in arg),
    "Fn::Join": lambda r, arg: arg[0].join(str(item) for item in r.resolve(arg[1])),
    "Condition": lambda r, name: r.condition(name),
}


def references(value: Any) -> set[str]:
    """The logical ids a value refers to (Ref, Fn::GetAtt, Fn::Sub), for ordering."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".")[0] for name in _PLACEHOLDER.findall(text)}
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return {name for name in found if not name.startswith("AWS::")}


def creation_order(resources: Mapping[str, Any], wanted: Iterable[str]) -> list:
    """``wanted`` logical ids, each after the ones it refers to."""
    wanted = list(wanted)
    order: list = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name not in wanted:
            return
        if name in visiting:
            raise TemplateError(f"template.json has a circular reference through {name}")
        visiting.add(name)
        for other in sorted(references(resources[name].get("Properties", {}))):
            visit(other)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order
