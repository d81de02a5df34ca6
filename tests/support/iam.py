"""Each function's AWS calls, checked against its own role: IAM sufficiency, by the tests.

Three parts:

- ``Policy`` evaluates identity-policy statements for one request as IAM
  does: an explicit Deny wins, then any Allow, and nothing else is allowed.
  Actions (case-insensitive) and resource ARNs (case-sensitive) with IAM's
  wildcards ``*`` and ``?``, NotAction and NotResource, and the condition
  operators and keys template.json uses. Anything beyond that (another
  operator or key, a Principal, a policy variable) raises ``Unevaluable``:
  the check refuses to decide, it never allows by default.
- ``function_policies`` reads each Lambda function's role from template.json
  (``chalice package`` merges it unchanged; tests/functional/deploy checks),
  resolved for one stage's parameters and resources.
- ``CallRecorder`` is a botocore hook (``before-parameter-build``) on every
  boto3 session made while it is installed. Each call a function makes (the
  function whose cache is in use, ``deps.current_function()``; test code,
  outside any function, is not recorded) becomes the requests IAM would
  authorize (``describe_call``: action, resource ARN, condition keys) and is
  checked against that function's own role. A call it cannot describe is a
  problem too, as is one client used by two functions.
"""
import os
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chalicelib import dependencies as deps
from scripts.deploy.template import Resolver, app_functions


class Unevaluable(Exception):
    """A policy or a call this checker cannot decide on: it says so rather than allow."""


# --- the evaluator -----------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: an action on a resource, with its condition keys."""

    action: str  # service prefix and action: "dynamodb:GetItem"
    resource: str  # an ARN, or "*" where the action has no resource-level permission
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        keys = "".join(f" {key}={list(values)}" for key, values in sorted(self.context.items()))
        return f"{self.action} on {self.resource}{keys}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    statement: str | None = None  # the Sid of the statement that allowed it


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> "re.Pattern[str]":
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's matching of actions, ARNs and StringLike: ``*`` any run, ``?`` one character."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


# What the condition operators compare; a negated one is true where its base is false.
_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda policy, value: policy == value,
    "StringLike": lambda policy, value: wildcard_match(policy, value),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike"}
_SET_PREFIXES = ("ForAllValues:", "ForAnyValue:")
# The condition keys the recorder can give a request (template.json uses these).
_KEYS = ("dynamodb:LeadingKeys", "aws:TagKeys")
_KEY_PREFIXES = ("aws:RequestTag/", "aws:ResourceTag/")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]]

    @classmethod
    def parse(cls, spec: Mapping[str, Any], position: int) -> "Statement":
        known = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
        sid = str(spec.get("Sid") or f"statement {position + 1}")
        if set(spec) - known:
            raise Unevaluable(f"{sid} has {sorted(set(spec) - known)}: not an identity policy "
                              "statement this checker evaluates")
        if spec.get("Effect") not in ("Allow", "Deny"):
            raise Unevaluable(f"{sid}: Effect must be Allow or Deny, not {spec.get('Effect')!r}")
        if ("Action" in spec) == ("NotAction" in spec):
            raise Unevaluable(f"{sid}: needs exactly one of Action and NotAction")
        if ("Resource" in spec) == ("NotResource" in spec):
            raise Unevaluable(f"{sid}: needs exactly one of Resource and NotResource")
        condition = spec.get("Condition") or {}
        for operator, keys in condition.items():
            _check_operator(sid, operator)
            for key, values in keys.items():
                if key not in _KEYS and not key.startswith(_KEY_PREFIXES):
                    raise Unevaluable(f"{sid}: condition key {key} is not one this checker "
                                      "can evaluate from a call (tests/support/iam.py)")
                if any("${" in str(value) for value in _listed(values)):
                    raise Unevaluable(f"{sid}: policy variables in {key} are not evaluated")
        strings = lambda name: tuple(str(v) for v in _listed(spec.get(name, [])))  # noqa: E731
        return cls(sid, spec["Effect"], strings("Action"), strings("NotAction"),
                   strings("Resource"), strings("NotResource"), condition)

    def covers(self, action: str, resource: str) -> bool:
        """Whether the action and resource are this statement's (its condition aside)."""
        if self.actions:
            action_ok = any(wildcard_match(a, action, ignore_case=True) for a in self.actions)
        else:
            action_ok = not any(wildcard_match(a, action, ignore_case=True) for a in self.not_actions)
        if self.resources:
            resource_ok = any(wildcard_match(r, resource) for r in self.resources)
        else:
            resource_ok = not any(wildcard_match(r, resource) for r in self.not_resources)
        return action_ok and resource_ok

    def failed_condition(self, context: Mapping[str, tuple[str, ...]]) -> str | None:
        """None when every condition holds; otherwise the first that does not."""
        for operator, keys in self.condition.items():
            for key, expected in keys.items():
                wanted = [str(v) for v in _listed(expected)]
                if not _condition_holds(operator, wanted, context.get(key)):
                    got = list(context[key]) if key in context else "absent"
                    return f"{operator} {key} {wanted} is false for {got}"
        return None


def _check_operator(sid: str, operator: str) -> None:
    base = operator
    for prefix in _SET_PREFIXES:
        base = base.removeprefix(prefix)
    base = base.removesuffix("IfExists")
    if base not in _COMPARE and base not in _NEGATED:
        raise Unevaluable(f"{sid}: condition operator {operator} is not one this checker "
                          "evaluates (tests/support/iam.py)")


def _condition_holds(operator: str, wanted: list[str], values: tuple[str, ...] | None) -> bool:
    """IAM's rules: values of one key are ORed; a set operator quantifies over the
    request's values (ForAllValues is true when there are none); without one, a
    key absent from the request makes the condition false, unless the operator is
    negated or ends in IfExists; a single-valued operator on many values refuses."""
    prefix = next((p for p in _SET_PREFIXES if operator.startswith(p)), "")
    base = operator.removeprefix(prefix)
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    negated = base in _NEGATED
    compare = _COMPARE[_NEGATED.get(base, base)]

    def matches(value: str) -> bool:
        return any(compare(w, value) for w in wanted) != negated

    if prefix == "ForAllValues:":
        return all(matches(v) for v in values or ())
    if prefix == "ForAnyValue:":
        return any(matches(v) for v in values or ())
    if values is None:
        return if_exists or negated
    if len(values) != 1:
        raise Unevaluable(f"{operator} is single-valued, the request has {list(values)}")
    return matches(values[0])


class Policy:
    """A role's statements (from every policy attached to it), evaluated as IAM does."""

    def __init__(self, name: str, statements: Iterable[Mapping[str, Any]]) -> None:
        self.name = name
        self.statements = [Statement.parse(s, n) for n, s in enumerate(statements)]

    def evaluate(self, request: Request) -> Decision:
        allowed_by: Statement | None = None
        near: list[str] = []
        for statement in self.statements:
            if not statement.covers(request.action, request.resource):
                continue
            failed = statement.failed_condition(request.context)
            if failed is not None:
                near.append(f"{statement.sid} names it, but {failed}")
            elif statement.effect == "Deny":
                return Decision(False, f"denied explicitly by {self.name}'s {statement.sid}")
            elif allowed_by is None:
                allowed_by = statement
        if allowed_by is not None:
            return Decision(True, f"allowed by {self.name}'s {allowed_by.sid}", allowed_by.sid)
        why = "; ".join(near) if near else "no statement names this action on this resource"
        return Decision(False, f"{self.name} does not allow it: {why}")


# --- the roles ---------------------------------------------------------------------------
_ATTACHED_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


def role_of(template: Mapping[str, Any], function: str) -> str:
    """The logical id of the role a function of the app runs with."""
    logical_id = app_functions()[function]
    role = template["Resources"][logical_id]["Properties"].get("Role")
    if not (isinstance(role, dict) and list(role) == ["Fn::GetAtt"] and role["Fn::GetAtt"][1] == "Arn"):
        raise Unevaluable(f"{logical_id}'s Role is {role!r}, not a role of the template")
    return str(role["Fn::GetAtt"][0])


def role_policy(template: Mapping[str, Any], role_id: str, resolver: Resolver) -> Policy:
    """Every statement of a role: its inline policies and the template's policies
    attached to it. A managed policy ARN or a boundary could not be read here."""
    resources = template["Resources"]
    properties = resources[role_id]["Properties"]
    for outside in ("ManagedPolicyArns", "PermissionsBoundary"):
        if properties.get(outside):
            raise Unevaluable(f"{role_id} has {outside}, which this checker cannot read")
    documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
    documents += [spec["Properties"]["PolicyDocument"] for spec in resources.values()
                  if spec.get("Type") in _ATTACHED_POLICY_TYPES
                  and {"Ref": role_id} in spec["Properties"].get("Roles", [])]
    statements = [statement for document in resolver.resolve(documents)
                  for statement in _listed(document["Statement"])]
    return Policy(role_id, statements)


def function_policies(template: Mapping[str, Any], resolver: Resolver) -> dict[str, Policy]:
    """Each function of the app (its Chalice name) -> its role's policy, resolved."""
    return {function: role_policy(template, role_of(template, function), resolver)
            for function in app_functions()}


# --- what a call asks IAM for --------------------------------------------------------------
# botocore's service name -> IAM's service prefix (they differ for some)
IAM_PREFIX = {
    "dynamodb": "dynamodb", "stepfunctions": "states", "events": "events", "sesv2": "ses",
    "secretsmanager": "secretsmanager", "cognito-idp": "cognito-idp", "lambda": "lambda",
}
NEW_ID = "{not-made-yet}"  # an SES tenant's id before CreateTenant gives it one
NO_ID = "{no-such-tenant}"  # the id of an SES tenant that does not exist


class Unmapped(Unevaluable):
    """A call whose IAM request this checker does not know how to derive."""


class AwsLookups:
    """What a request's ARN and condition keys need from the stage itself (a
    table's keys, an SES tenant's id and tags, a secret's full ARN), read through
    a session of the test's own and outside any function, so never recorded."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._clients: dict[str, Any] = {}
        self._tables: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(service)
            return self._clients[service]

    def table(self, name: str) -> dict[str, Any]:
        if name not in self._tables:
            with deps.within(""):
                self._tables[name] = self._client("dynamodb").describe_table(TableName=name)["Table"]
        return self._tables[name]

    def ses_tenant(self, name: str) -> dict[str, Any] | None:
        ses = self._client("sesv2")
        with deps.within(""):
            try:
                return dict(ses.get_tenant(TenantName=name)["Tenant"])
            except ses.exceptions.NotFoundException:
                return None

    def ses_identity(self, name: str) -> bool:
        """Whether ``name`` (an address or a domain) is an SES identity of the stage's account."""
        ses = self._client("sesv2")
        with deps.within(""):
            try:
                ses.get_email_identity(EmailIdentity=name)
            except ses.exceptions.NotFoundException:
                return False
        return True

    def secret_arn(self, secret_id: str) -> str | None:
        secrets = self._client("secretsmanager")
        with deps.within(""):
            try:
                return str(secrets.describe_secret(SecretId=secret_id)["ARN"])
            except secrets.exceptions.ResourceNotFoundException:
                return None


def _attribute(value: Mapping[str, Any]) -> str:
    (kind, scalar), = value.items()
    if kind not in ("S", "N", "B"):
        raise Unmapped(f"a key attribute of type {kind}")
    return str(scalar)


def _partition_key(schema: Iterable[Mapping[str, str]]) -> str:
    return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")


def _queried_partition(params: Mapping[str, Any], key_name: str) -> str:
    """The partition key value a Query names (its KeyConditionExpression's ``=``)."""
    names = params.get("ExpressionAttributeNames", {})
    if "KeyConditions" in params:
        condition = params["KeyConditions"][key_name]
        return _attribute(condition["AttributeValueList"][0])
    expression = params.get("KeyConditionExpression", "")
    for clause in re.split(r"\s+and\s+", expression, flags=re.IGNORECASE):
        found = re.fullmatch(r"\(?\s*([:#\w.]+)\s*=\s*([:#\w.]+)\s*\)?", clause.strip())
        if not found:
            continue
        left, right = found.groups()
        if right.startswith(":"):
            attribute, placeholder = left, right
        else:
            attribute, placeholder = right, left
        if names.get(attribute, attribute) == key_name:
            return _attribute(params["ExpressionAttributeValues"][placeholder])
    raise Unmapped(f"no {key_name} = :value in KeyConditionExpression {expression!r}")


class CallDescriber:
    """A call's parameters -> the requests IAM authorizes for it."""

    def __init__(self, lookups: AwsLookups, region: str, account: str) -> None:
        self._aws = lookups
        self._region = region
        self._account = account

    def __call__(self, service: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        describe = getattr(self, "_" + service.replace("-", "_"), None)
        if service not in IAM_PREFIX or describe is None:
            raise Unmapped(f"{service}.{operation}: no IAM mapping for the service")
        requests: list[Request] = describe(IAM_PREFIX[service], operation, params)
        return requests

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self._region}:{self._account}:{resource}"

    # DynamoDB: the table (or index) and the partition keys it touches
    def _dynamodb(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            return [self._item(f"{prefix}:{operation}", params)]
        if operation in ("Query", "Scan"):
            table = self._aws.table(params["TableName"])
            resource, schema = table["TableArn"], table["KeySchema"]
            if params.get("IndexName"):
                index = next(i for i in table.get("GlobalSecondaryIndexes", [])
                             + table.get("LocalSecondaryIndexes", [])
                             if i["IndexName"] == params["IndexName"])
                resource, schema = f"{resource}/index/{params['IndexName']}", index["KeySchema"]
            context = {} if operation == "Scan" else {
                "dynamodb:LeadingKeys": (_queried_partition(params, _partition_key(schema)),)}
            return [Request(f"{prefix}:{operation}", resource, context)]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            # IAM authorizes each item as its own action (DynamoDB developer
            # guide, "Using IAM with DynamoDB transactions")
            actions = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                       "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
            requests = []
            for entry in params["TransactItems"]:
                (kind, item), = entry.items()
                requests.append(self._item(f"{prefix}:{actions[kind]}", item))
            return requests
        raise Unmapped(f"dynamodb.{operation}: add its IAM request to tests/support/iam.py")

    def _item(self, action: str, params: Mapping[str, Any]) -> Request:
        table = self._aws.table(params["TableName"])
        key = params.get("Key") or params["Item"]
        leading = _attribute(key[_partition_key(table["KeySchema"])])
        return Request(action, table["TableArn"], {"dynamodb:LeadingKeys": (leading,)})

    # Step Functions
    def _stepfunctions(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
            return [Request(f"{prefix}:{operation}", "*")]  # authorized by the token alone
        for parameter in ("executionArn", "stateMachineArn"):
            if parameter in params:
                return [Request(f"{prefix}:{operation}", str(params[parameter]))]
        raise Unmapped(f"stepfunctions.{operation}: add its IAM request to tests/support/iam.py")

    # EventBridge: each bus the entries go to
    def _events(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        if operation != "PutEvents":
            raise Unmapped(f"events.{operation}: add its IAM request to tests/support/iam.py")
        buses = sorted({entry.get("EventBusName") or "default" for entry in params["Entries"]})
        return [Request(f"{prefix}:PutEvents",
                        bus if bus.startswith("arn:") else self._arn("events", f"event-bus/{bus}"))
                for bus in buses]

    # SES v2: contact lists, and SES tenants (ARN tenant/<name>/<id>; tags as condition keys)
    def _sesv2(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        action = f"{prefix}:{operation}"
        if "ContactListName" in params:
            arn = self._arn("ses", f"contact-list/{params['ContactListName']}")
            return [Request(action, arn, _request_tags(params.get("Tags")))]
        if operation == "CreateTenant":
            arn = self._arn("ses", f"tenant/{params['TenantName']}/{NEW_ID}")
            return [Request(action, arn, _request_tags(params.get("Tags")))]
        if operation in ("GetTenant", "DeleteTenant"):
            found = self._aws.ses_tenant(params["TenantName"])
            if found is None:  # no ARN and no tags: a condition on its tags cannot hold
                return [Request(action, self._arn("ses", f"tenant/{params['TenantName']}/{NO_ID}"))]
            tags = {f"aws:ResourceTag/{t['Key']}": (t["Value"],) for t in found.get("Tags", [])}
            return [Request(action, found["TenantArn"], tags)]
        if operation == "CreateTenantResourceAssociation":
            # on both: the resource (an identity here) and the SES tenant, with its tags
            found = self._aws.ses_tenant(params["TenantName"])
            tenant = (Request(action, found["TenantArn"], {
                f"aws:ResourceTag/{t['Key']}": (t["Value"],) for t in found.get("Tags", [])})
                if found else
                Request(action, self._arn("ses", f"tenant/{params['TenantName']}/{NO_ID}")))
            return [Request(action, str(params["ResourceArn"])), tenant]
        if operation == "SendEmail":
            # on the verified identity the From address sends through (itself, or its
            # domain); the SES tenant is a condition key, not a resource (the Service
            # Authorization Reference for SES v2: identity*, configuration-set, template)
            sender = str(params["FromEmailAddress"]).rsplit("<", 1)[-1].rstrip(">")
            identity = sender if self._aws.ses_identity(sender) else sender.split("@", 1)[1]
            context = ({"ses:TenantName": (str(params["TenantName"]),)}
                       if params.get("TenantName") else {})
            return [Request(action, self._arn("ses", f"identity/{identity}"), context)]
        raise Unmapped(f"sesv2.{operation}: add its IAM request to tests/support/iam.py")

    def _secretsmanager(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        if "SecretId" not in params:
            raise Unmapped(f"secretsmanager.{operation}: add its IAM request to tests/support/iam.py")
        secret = str(params["SecretId"])
        arn = secret if secret.startswith("arn:") else (
            self._aws.secret_arn(secret) or self._arn("secretsmanager", f"secret:{secret}"))
        return [Request(f"{prefix}:{operation}", arn)]

    def _cognito_idp(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        if "UserPoolId" not in params:
            raise Unmapped(f"cognito-idp.{operation}: add its IAM request to tests/support/iam.py")
        return [Request(f"{prefix}:{operation}",
                        self._arn("cognito-idp", f"userpool/{params['UserPoolId']}"))]

    def _lambda(self, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
        if operation != "Invoke":
            raise Unmapped(f"lambda.{operation}: add its IAM request to tests/support/iam.py")
        name = str(params["FunctionName"])
        arn = name if name.startswith("arn:") else self._arn("lambda", f"function:{name}")
        return [Request(f"{prefix}:InvokeFunction", arn)]


def _request_tags(tags: Iterable[Mapping[str, str]] | None) -> dict[str, tuple[str, ...]]:
    if not tags:
        return {}
    context = {f"aws:RequestTag/{t['Key']}": (t["Value"],) for t in tags}
    return {**context, "aws:TagKeys": tuple(t["Key"] for t in tags)}


# --- the recorder ----------------------------------------------------------------------------
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def call_shape(service: str, operation: str, request: Request) -> str:
    """The call (botocore's service and operation) and one request IAM authorizes
    for it, with its tenants' ids left out: what counts as one distinct call. The
    operation is kept, so an item written by TransactWriteItems is not counted
    as the PutItem it is authorized as."""
    text = _UUID.sub("<id>", request.describe())
    text = re.sub(r"(:tenant/[^/\s]+/)[^\s/]+", r"\1<TenantId>", text)
    return f"{service}.{operation}: {text}"


HOOK = "before-parameter-build"


@dataclass
class Recording:
    """What a recorder saw: ``problems`` (each call a role denies, and each it
    could not describe or evaluate); ``checked``: per function, each distinct
    call allowed and how often it was made; ``used``: per function, the Sids of
    the statements that allowed them."""

    problems: list[str] = field(default_factory=list)
    checked: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    used: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, other: "Recording") -> None:
        self.problems += other.problems
        for function, calls in other.checked.items():
            self.checked[function].update(calls)
        for function, sids in other.used.items():
            self.used[function] |= sids


class CallRecorder:
    """Every call a function makes, checked against its own role as it is made.

    ``policies()`` gives the roles as the stage is deployed at that moment
    (template.json resolved for the stage's parameters). One client used by
    two functions is a problem too: each function builds its own.
    """

    def __init__(self, policies: Callable[[], Mapping[str, Policy]], describe: CallDescriber) -> None:
        self._policies = policies
        self._describe = describe
        self._lock = threading.Lock()
        self._recording = Recording()
        self._client_of: dict[int, tuple[Any, str]] = {}

    def take(self) -> Recording:
        """What was recorded since the last take; the next starts afresh."""
        with self._lock:
            taken, self._recording, self._client_of = self._recording, Recording(), {}
            return taken

    def __call__(self, params: Mapping[str, Any], model: Any, context: Mapping[str, Any],
                 **_: Any) -> None:
        function = deps.current_function()
        if not function:  # test code, and the recorder's own lookups
            return
        service, operation = model.service_model.service_name, model.name
        try:
            self._check(function, service, operation, params, context.get("client_config"))
        except Unevaluable as refused:
            self._problem(f"{function}: {service}.{operation} could not be checked: {refused}")
        except Exception as error:  # never let the checker break the call it watches
            self._problem(f"{function}: {service}.{operation}: the IAM check failed: "
                          f"{type(error).__name__}: {error}")

    def _check(self, function: str, service: str, operation: str, params: Mapping[str, Any],
               client_config: Any) -> None:
        self._one_client_one_function(function, service, client_config)
        policy = self._policies().get(function)
        if policy is None:
            raise Unevaluable(f"{function} is not a function of the app "
                              "(scripts.deploy.template.app_functions)")
        for request in self._describe(service, operation, params):
            decision = policy.evaluate(request)
            with self._lock:
                if decision.allowed and decision.statement:
                    self._recording.checked[function][call_shape(service, operation, request)] += 1
                    self._recording.used[function].add(decision.statement)
                else:
                    self._recording.problems.append(
                        f"{function}: {service}.{operation} needs {request.describe()}: {decision.reason}")

    def _one_client_one_function(self, function: str, service: str, client_config: Any) -> None:
        """A client is its function's own (each function has containers of its own)."""
        if client_config is None:
            return
        with self._lock:
            # the config object is the client's own; held, so its id is not reused
            _, first = self._client_of.setdefault(id(client_config), (client_config, function))
        if first != function:
            raise Unevaluable(f"a {service} client of {first} made this call: each function "
                              "must build its own (chalicelib/dependencies.py)")

    def _problem(self, text: str) -> None:
        with self._lock:
            self._recording.problems.append(text)


def install(recorder: CallRecorder) -> None:
    """``recorder`` on every boto3 session made from now on, whoever makes it
    (the stage's shared session, a test's own, a function's after ``deps.reset``):
    botocore registers its BUILTIN_HANDLERS on each new session."""
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append((HOOK, recorder))


def uninstall(recorder: CallRecorder) -> None:
    from botocore import handlers

    handlers.BUILTIN_HANDLERS[:] = [spec for spec in handlers.BUILTIN_HANDLERS
                                    if spec[1] is not recorder]


def deployed_parameters(default_mode: str) -> tuple[str, bool]:
    """The stack parameters the functions' environment was made from: the contact
    list mode, and Stripe on when the functions name a secret."""
    return (os.environ.get("CONTACT_LIST_MODE") or default_mode,
            bool(os.environ.get("STRIPE_SECRET_ID")))


# The user property tests/test_iam.py reports its coverage under, so that the
# terminal summary (tests/conftest.py) finds it also in a report an xdist worker sent.
COVERAGE_PROPERTY = "iam_coverage"


def coverage_of(checked: Mapping[str, Counter[str]], functions: Iterable[str]) -> dict[str, list[str]]:
    """Each function's distinct calls checked, sorted: plain data, as a report carries it."""
    return {function: sorted(checked.get(function, {})) for function in functions}


def coverage_lines(coverage: Mapping[str, list[str]], calls: bool = False) -> list[str]:
    """How many distinct calls were checked for each function, their total, and
    (``calls``) the calls themselves."""
    lines = [f"{'function':<30} distinct calls checked"]
    for function, shapes in coverage.items():
        lines.append(f"{function:<30} {len(shapes)}")
        if calls:
            lines += [f"    {shape}" for shape in shapes]
    lines.append(f"{'total':<30} {sum(len(shapes) for shapes in coverage.values())}")
    return lines
