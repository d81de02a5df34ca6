"""Creates the AWS resources of one stage around the Chalice app.

One module for both the deploy script (real AWS) and the local stack (moto's
server), so the two cannot drift: same names, same table keys, same user pool
settings, same state machine definition. Every ``ensure_*`` function finds
the resource by name first and creates it only when missing.

Not shipped to Lambda (Chalice packages only app.py and chalicelib/).
"""
import copy
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

APP_NAME = "tenant-onboarding"
PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFINITION_PATH = PROJECT_DIR / "statemachine.json"
WAIT_STATE = "Wait For Callback"
STATE_MACHINE_POLICY = "invoke-task-functions"
# Admins list tenants by status without a scan (sparse: only tenant records
# have a status).
STATUS_INDEX = "byStatus"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

# The functions statemachine.json runs, by Chalice function name.
TASK_FUNCTIONS = (
    "create_tenant_record",
    "create_stripe_customer",
    "update_tenant_with_stripe_id",
    "create_contact_list",
    "await_decision",
    "update_status_and_notify",
)
TRIGGER_FUNCTION = "post_confirmation"


@dataclass(frozen=True)
class StageNames:
    """Every resource name of a stage, derived from the app name and stage."""

    stage: str

    @property
    def prefix(self) -> str:
        return f"{APP_NAME}-{self.stage}"

    @property
    def table(self) -> str:
        return f"{self.prefix}-tenants"

    @property
    def event_bus(self) -> str:
        return self.prefix

    @property
    def state_machine(self) -> str:
        return self.prefix

    @property
    def state_machine_role(self) -> str:
        return f"{self.prefix}-states"

    @property
    def state_machine_log_group(self) -> str:
        return f"/aws/vendedlogs/states/{self.prefix}"

    @property
    def user_pool(self) -> str:
        return f"{self.prefix}-tenants"

    @property
    def user_pool_client(self) -> str:
        return f"{self.prefix}-web"

    @property
    def shared_contact_list(self) -> str:
        """The stage's one SES contact list in topic-per-tenant mode.

        ``tenants-<stage>``: per-tenant lists are ``tenant-<tenantId>``, so an
        IAM pattern ``contact-list/tenant-*`` never matches a shared list.
        """
        return f"tenants-{self.stage}"

    @property
    def stripe_secret(self) -> str:
        return f"{APP_NAME}/{self.stage}/stripe-api-key"

    def function(self, chalice_name: str) -> str:
        """The deployed Lambda name Chalice gives a function of this stage."""
        return f"{self.prefix}-{chalice_name}"

    def function_arn(self, chalice_name: str, region: str, account: str) -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{self.function(chalice_name)}"

    def state_machine_arn(self, region: str, account: str) -> str:
        # Deterministic, so the trigger's environment can name it before it exists.
        return f"arn:aws:states:{region}:{account}:stateMachine:{self.state_machine}"

    def environment(self, region: str, account: str) -> Dict[str, str]:
        """The Lambda environment of this stage (see .chalice/config.json)."""
        return {
            "TENANT_TABLE_NAME": self.table,
            "EVENT_BUS_NAME": self.event_bus,
            "STATE_MACHINE_ARN": self.state_machine_arn(region, account),
            "SHARED_CONTACT_LIST_NAME": self.shared_contact_list,
        }


# --- the state machine definition ----------------------------------------------
def placeholder_for(chalice_name: str) -> str:
    """create_tenant_record -> CreateTenantRecordFunctionArn."""
    return "".join(part.capitalize() for part in chalice_name.split("_")) + "FunctionArn"


def placeholders(template: str) -> set:
    return set(_PLACEHOLDER.findall(template))


def render_definition(
    template: str,
    function_arns: Mapping[str, str],
    approval_timeout_seconds: Optional[int] = None,
) -> str:
    """Fill every ``${...}Arn`` placeholder from Chalice function name -> ARN.

    ``approval_timeout_seconds`` replaces the 24-hour wait, for tests and for
    trying timeouts locally; deploys leave it unset.
    """
    values = {placeholder_for(name): arn for name, arn in function_arns.items()}
    missing = placeholders(template) - set(values)
    if missing:
        raise ValueError(f"no function ARN for placeholder(s): {', '.join(sorted(missing))}")
    rendered = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    if approval_timeout_seconds is None:
        return rendered
    definition = json.loads(rendered)
    wait = definition["States"][WAIT_STATE]
    wait["TimeoutSeconds"] = int(approval_timeout_seconds)
    wait["Parameters"]["Payload"]["approvalWindowSeconds"] = int(approval_timeout_seconds)
    return json.dumps(definition, indent=2)


def load_template(project_dir: Path = PROJECT_DIR) -> str:
    return (project_dir / DEFINITION_PATH.name).read_text()


# --- resources -----------------------------------------------------------------
_ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
    {"AttributeName": "status", "AttributeType": "S"},
    {"AttributeName": "createdAt", "AttributeType": "S"},
]
_STATUS_INDEX = {
    "IndexName": STATUS_INDEX,
    "KeySchema": [
        {"AttributeName": "status", "KeyType": "HASH"},
        {"AttributeName": "createdAt", "KeyType": "RANGE"},
    ],
    # What the admin listing shows, never the pending task token: the waiting
    # task writes ``decideBy`` at the top level for this index.
    "Projection": {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["name", "email", "updatedAt", "decideBy"],
    },
}
INDEX_REPLACE_TIMEOUT_SECONDS = 900


def ensure_table(dynamodb: Any, names: StageNames, deletion_protection: bool = False) -> str:
    """On-demand table of tenant records, with the by-status index."""
    try:
        return dynamodb.describe_table(TableName=names.table)["Table"]["TableArn"]
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    table = dynamodb.create_table(
        TableName=names.table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=_ATTRIBUTES,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[_STATUS_INDEX],
        DeletionProtectionEnabled=deletion_protection,
        Tags=[{"Key": "app", "Value": APP_NAME}, {"Key": "stage", "Value": names.stage}],
    )["TableDescription"]
    dynamodb.get_waiter("table_exists").wait(TableName=names.table)
    return table["TableArn"]


def missing_indexes(table: Dict[str, Any]) -> list:
    present = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
    return [name for name in (STATUS_INDEX,) if name not in present]


def _same_projection(current: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
    return current.get("ProjectionType") == wanted["ProjectionType"] and sorted(
        current.get("NonKeyAttributes") or []
    ) == sorted(wanted.get("NonKeyAttributes") or [])


def stale_indexes(table: Dict[str, Any]) -> list:
    """Our indexes that exist with another projection (e.g. ALL, from before).

    DynamoDB cannot change a projection in place: the index must be deleted
    and created again (see ``replace_index``).
    """
    return [
        index["IndexName"]
        for index in table.get("GlobalSecondaryIndexes", [])
        if index["IndexName"] == STATUS_INDEX
        and not _same_projection(index.get("Projection") or {}, _STATUS_INDEX["Projection"])
    ]


def replace_index(
    dynamodb: Any,
    names: StageNames,
    index_name: str,
    timeout_seconds: float = INDEX_REPLACE_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Delete the index, wait until it is gone, create it with our projection.

    Queries on the index fail until the new one has been backfilled
    (minutes, more on a big table). One index change per UpdateTable call,
    and a name cannot be reused while its index is still being deleted.
    """
    if index_name != STATUS_INDEX:
        raise ValueError(f"unknown index {index_name}")
    dynamodb.update_table(
        TableName=names.table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index_name}}]
    )
    deadline = time.monotonic() + timeout_seconds
    while True:
        table = dynamodb.describe_table(TableName=names.table)["Table"]
        busy = table.get("TableStatus") != "ACTIVE" or any(
            i["IndexName"] == index_name for i in table.get("GlobalSecondaryIndexes", [])
        )
        if not busy:
            break
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"index {index_name} of {names.table} still being deleted after "
                f"{timeout_seconds:.0f}s; run the deploy again to create it"
            )
        sleep(5)
    add_missing_indexes(dynamodb, names, table)


def add_missing_indexes(dynamodb: Any, names: StageNames, table: Dict[str, Any]) -> None:
    if STATUS_INDEX in missing_indexes(table):
        dynamodb.update_table(
            TableName=names.table,
            AttributeDefinitions=_ATTRIBUTES,
            GlobalSecondaryIndexUpdates=[{"Create": _STATUS_INDEX}],
        )


def enable_point_in_time_recovery(dynamodb: Any, names: StageNames) -> None:
    dynamodb.update_continuous_backups(
        TableName=names.table,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )


def ensure_event_bus(events: Any, names: StageNames) -> str:
    try:
        return events.describe_event_bus(Name=names.event_bus)["Arn"]
    except events.exceptions.ResourceNotFoundException:
        return events.create_event_bus(Name=names.event_bus)["EventBusArn"]


def ensure_state_machine_role(iam: Any, names: StageNames, function_arns: Iterable[str]) -> str:
    """The role Step Functions assumes: it may invoke exactly the task functions."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        arn = iam.get_role(RoleName=names.state_machine_role)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(
            RoleName=names.state_machine_role,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=f"Step Functions role of {names.prefix}",
        )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=names.state_machine_role,
        PolicyName=STATE_MACHINE_POLICY,
        PolicyDocument=json.dumps(state_machine_role_policy(function_arns)),
    )
    return arn


def state_machine_role_policy(function_arns: Iterable[str]) -> Dict[str, Any]:
    """Invoke exactly the task functions; deliver logs to CloudWatch Logs.

    The log-delivery actions take no resource-level permissions in AWS, so
    they are the one Resource "*" here (Step Functions developer guide,
    "IAM policies for logging to CloudWatch Logs").
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeTaskFunctions",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": sorted(function_arns),
            },
            {
                "Sid": "DeliverExecutionLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies",
                    "logs:GetLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:UpdateLogDelivery",
                ],
                "Resource": "*",
            },
        ],
    }


def state_machine_logging(log_group_arn: str) -> Dict[str, Any]:
    """Errors only, without execution data: inputs carry task tokens and emails."""
    return {
        "level": "ERROR",
        "includeExecutionData": False,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": log_group_arn}}],
    }


def same_logging(current: Optional[Dict[str, Any]], wanted: Dict[str, Any]) -> bool:
    current = current or {}
    return (
        current.get("level") == wanted["level"]
        and bool(current.get("includeExecutionData")) == wanted["includeExecutionData"]
        and current.get("destinations", []) == wanted["destinations"]
    )


def ensure_state_machine(
    sfn: Any,
    names: StageNames,
    definition: str,
    role_arn: str,
    logging: Optional[Dict[str, Any]] = None,
) -> str:
    region = sfn.meta.region_name
    account = role_arn.split(":")[4]
    arn = names.state_machine_arn(region, account)
    extra = {"loggingConfiguration": logging} if logging else {}
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        return sfn.create_state_machine(
            name=names.state_machine,
            definition=definition,
            roleArn=role_arn,
            type="STANDARD",
            tags=[{"key": "app", "value": APP_NAME}, {"key": "stage", "value": names.stage}],
            **extra,
        )["stateMachineArn"]
    sfn.update_state_machine(
        stateMachineArn=arn, definition=definition, roleArn=role_arn, **extra
    )
    return arn


def user_pool_settings(
    names: StageNames, trigger_arn: str, deletion_protection: bool = False
) -> Dict[str, Any]:
    """Email sign-in, email required and auto-verified, ``name`` required.

    ``deletion_protection``: DeleteUserPool is refused until it is turned off
    (every stage but dev: the pool holds every tenant's login).
    """
    return {
        "PoolName": names.user_pool,
        "UsernameAttributes": ["email"],
        "AutoVerifiedAttributes": ["email"],
        "Schema": [
            {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
        ],
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": 10,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": False,
                "TemporaryPasswordValidityDays": 7,
            }
        },
        "AccountRecoverySetting": {
            "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]
        },
        "LambdaConfig": {"PostConfirmation": trigger_arn},
        "UserPoolTags": {"app": APP_NAME, "stage": names.stage},
        "DeletionProtection": "ACTIVE" if deletion_protection else "INACTIVE",
    }


def ensure_user_pool(
    cognito: Any, names: StageNames, trigger_arn: str, deletion_protection: bool = False
) -> Dict[str, str]:
    """The tenants' user pool and its browser client (no secret)."""
    pool_id = find_user_pool(cognito, names.user_pool)
    if pool_id is None:
        pool_id = cognito.create_user_pool(
            **user_pool_settings(names, trigger_arn, deletion_protection)
        )["UserPool"]["Id"]
    client_id = find_user_pool_client(cognito, pool_id, names.user_pool_client)
    if client_id is None:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=names.user_pool_client,
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            PreventUserExistenceErrors="ENABLED",
        )["UserPoolClient"]["ClientId"]
    return {"userPoolId": pool_id, "userPoolClientId": client_id}


def user_pool_differences(
    pool: Dict[str, Any], names: StageNames, trigger_arn: str, deletion_protection: bool = False
) -> list:
    wanted = user_pool_settings(names, trigger_arn, deletion_protection)
    differences = []
    if (pool.get("LambdaConfig") or {}).get("PostConfirmation") != trigger_arn:
        differences.append("post-confirmation trigger")
    current_policy = (pool.get("Policies") or {}).get("PasswordPolicy", {})
    if any(current_policy.get(k) != v for k, v in wanted["Policies"]["PasswordPolicy"].items()):
        differences.append("password policy")
    if sorted(pool.get("AutoVerifiedAttributes") or []) != wanted["AutoVerifiedAttributes"]:
        differences.append("auto-verified attributes")
    # turned on where wanted, never turned off by a deploy (only --delete-data does)
    if deletion_protection and pool.get("DeletionProtection") != "ACTIVE":
        differences.append("deletion protection on")
    return differences


# UpdateUserPool sets every setting it is not given back to its default
# (other Lambda triggers, email and SMS configuration, MFA, ...), so an update
# starts from DescribeUserPool's values for everything UpdateUserPool takes.
_NOT_CARRIED_OVER = {"UserPoolId", "PoolName"}
# Deprecated duplicates of VerificationMessageTemplate's fields.
_LEGACY_MESSAGES = ("EmailVerificationMessage", "EmailVerificationSubject",
                    "SmsVerificationMessage")


def current_user_pool_settings(cognito: Any, pool: Dict[str, Any]) -> Dict[str, Any]:
    """The UpdateUserPool arguments that leave ``pool`` (DescribeUserPool's
    ``UserPool``) as it is."""
    accepted = cognito.meta.service_model.operation_model("UpdateUserPool").input_shape.members
    settings = {
        key: copy.deepcopy(value)
        for key, value in pool.items()
        if key in accepted and key not in _NOT_CARRIED_OVER
    }
    if "VerificationMessageTemplate" in settings:
        for key in _LEGACY_MESSAGES:
            settings.pop(key, None)
    # Deprecated; Cognito refuses it next to PasswordPolicy.TemporaryPasswordValidityDays.
    (settings.get("AdminCreateUserConfig") or {}).pop("UnusedAccountValidityDays", None)
    return settings


def update_user_pool(
    cognito: Any,
    pool_id: str,
    names: StageNames,
    trigger_arn: str,
    deletion_protection: bool = False,
) -> None:
    """Bring the settings we manage to ours; keep everything else as it is."""
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    wanted = user_pool_settings(names, trigger_arn, deletion_protection)
    settings = current_user_pool_settings(cognito, pool)
    settings["LambdaConfig"] = {**(settings.get("LambdaConfig") or {}), **wanted["LambdaConfig"]}
    policies = settings.get("Policies") or {}
    settings["Policies"] = {
        **policies,
        "PasswordPolicy": {
            **(policies.get("PasswordPolicy") or {}),
            **wanted["Policies"]["PasswordPolicy"],
        },
    }
    settings["AutoVerifiedAttributes"] = wanted["AutoVerifiedAttributes"]
    settings["AccountRecoverySetting"] = wanted["AccountRecoverySetting"]
    settings["UserPoolTags"] = {**(settings.get("UserPoolTags") or {}), **wanted["UserPoolTags"]}
    if deletion_protection:
        settings["DeletionProtection"] = "ACTIVE"
    cognito.update_user_pool(UserPoolId=pool_id, **settings)


def set_user_pool_deletion_protection(cognito: Any, pool_id: str, active: bool) -> None:
    """Turn deletion protection on or off, every other setting kept."""
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    settings = current_user_pool_settings(cognito, pool)
    settings["DeletionProtection"] = "ACTIVE" if active else "INACTIVE"
    cognito.update_user_pool(UserPoolId=pool_id, **settings)


def find_user_pool(cognito: Any, name: str) -> Optional[str]:
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            if pool["Name"] == name:
                return pool["Id"]
    return None


def find_user_pool_client(cognito: Any, pool_id: str, name: str) -> Optional[str]:
    for page in cognito.get_paginator("list_user_pool_clients").paginate(
        UserPoolId=pool_id, MaxResults=60
    ):
        for client in page["UserPoolClients"]:
            if client["ClientName"] == name:
                return client["ClientId"]
    return None


def ensure_shared_contact_list(sesv2: Any, names: StageNames) -> str:
    """The one SES contact list of a stage in topic-per-tenant mode."""
    try:
        sesv2.get_contact_list(ContactListName=names.shared_contact_list)
    except sesv2.exceptions.NotFoundException:
        sesv2.create_contact_list(
            ContactListName=names.shared_contact_list,
            Description=f"Tenants of {names.prefix}: one topic per tenant",
        )
    return names.shared_contact_list


def put_stripe_secret(secrets: Any, names: StageNames, api_key: str) -> str:
    """Store the Stripe key; the value is never returned, logged or printed."""
    try:
        return secrets.put_secret_value(SecretId=names.stripe_secret, SecretString=api_key)[
            "ARN"
        ]
    except secrets.exceptions.ResourceNotFoundException:
        return secrets.create_secret(
            Name=names.stripe_secret,
            SecretString=api_key,
            Description=f"Stripe secret key of {names.prefix}",
        )["ARN"]


def provision_emulated_stage(
    session: Any,
    names: StageNames,
    account: str,
    approval_timeout_seconds: Optional[int] = None,
    contact_list_mode: str = "list-per-tenant",
    stripe_key: Optional[str] = None,
) -> Dict[str, str]:
    """Every resource of a stage on an emulated AWS (the local stack, tests).

    Function ARNs are the ones Chalice would give the stage's functions; the
    emulator answers their invocations in process. Returns the state machine
    ARN and the user pool and client ids.
    """
    region = session.region_name
    arns = {name: names.function_arn(name, region, account) for name in TASK_FUNCTIONS}
    ensure_table(session.client("dynamodb"), names)
    ensure_event_bus(session.client("events"), names)
    if contact_list_mode == "topic-per-tenant":
        ensure_shared_contact_list(session.client("sesv2"), names)
    role = ensure_state_machine_role(session.client("iam"), names, arns.values())
    machine = ensure_state_machine(
        session.client("stepfunctions"),
        names,
        render_definition(load_template(), arns, approval_timeout_seconds),
        role,
    )
    trigger = names.function_arn(TRIGGER_FUNCTION, region, account)
    pool = ensure_user_pool(session.client("cognito-idp"), names, trigger)
    if stripe_key:
        put_stripe_secret(session.client("secretsmanager"), names, stripe_key)
    return {"stateMachineArn": machine, **pool}
