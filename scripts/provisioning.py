"""Creates the AWS resources of one stage around the Chalice app.

One module for both the deploy script (real AWS) and the local stack (moto's
server), so the two cannot drift: same names, same table keys, same user pool
settings, same state machine definition. Every ``ensure_*`` function finds
the resource by name first and creates it only when missing.

Not shipped to Lambda (Chalice packages only app.py and chalicelib/).
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

APP_NAME = "tenant-onboarding"
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFINITION_PATH = PROJECT_DIR / "statemachine.json"
WAIT_STATE = "Wait For Callback"
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
    def user_pool(self) -> str:
        return f"{self.prefix}-tenants"

    @property
    def user_pool_client(self) -> str:
        return f"{self.prefix}-web"

    @property
    def shared_contact_list(self) -> str:
        """The stage's one SES contact list in topic-per-tenant mode."""
        return self.prefix

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
    definition["States"][WAIT_STATE]["TimeoutSeconds"] = int(approval_timeout_seconds)
    return json.dumps(definition, indent=2)


def load_template() -> str:
    return DEFINITION_PATH.read_text()


# --- resources -----------------------------------------------------------------
def ensure_table(dynamodb: Any, names: StageNames) -> str:
    try:
        return dynamodb.describe_table(TableName=names.table)["Table"]["TableArn"]
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    table = dynamodb.create_table(
        TableName=names.table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        Tags=[{"Key": "app", "Value": APP_NAME}, {"Key": "stage", "Value": names.stage}],
    )["TableDescription"]
    dynamodb.get_waiter("table_exists").wait(TableName=names.table)
    return table["TableArn"]


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
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": sorted(function_arns),
            }
        ],
    }
    iam.put_role_policy(
        RoleName=names.state_machine_role,
        PolicyName="invoke-task-functions",
        PolicyDocument=json.dumps(policy),
    )
    return arn


def ensure_state_machine(sfn: Any, names: StageNames, definition: str, role_arn: str) -> str:
    region = sfn.meta.region_name
    account = role_arn.split(":")[4]
    arn = names.state_machine_arn(region, account)
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        return sfn.create_state_machine(
            name=names.state_machine,
            definition=definition,
            roleArn=role_arn,
            type="STANDARD",
        )["stateMachineArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role_arn)
    return arn


def user_pool_settings(names: StageNames, trigger_arn: str) -> Dict[str, Any]:
    """Email sign-in, email required and auto-verified, ``name`` required."""
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
    }


def ensure_user_pool(cognito: Any, names: StageNames, trigger_arn: str) -> Dict[str, str]:
    """The tenants' user pool and its browser client (no secret)."""
    pool_id = _find_user_pool(cognito, names.user_pool)
    if pool_id is None:
        pool_id = cognito.create_user_pool(**user_pool_settings(names, trigger_arn))[
            "UserPool"
        ]["Id"]
    client_id = _find_user_pool_client(cognito, pool_id, names.user_pool_client)
    if client_id is None:
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=names.user_pool_client,
            GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            PreventUserExistenceErrors="ENABLED",
        )["UserPoolClient"]["ClientId"]
    return {"userPoolId": pool_id, "userPoolClientId": client_id}


def _find_user_pool(cognito: Any, name: str) -> Optional[str]:
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            if pool["Name"] == name:
                return pool["Id"]
    return None


def _find_user_pool_client(cognito: Any, pool_id: str, name: str) -> Optional[str]:
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
