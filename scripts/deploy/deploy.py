"""Deploy a stage of tenant-onboarding to AWS: one command, safely repeatable.

    make deploy STAGE=dev                       # or:
    python -m scripts.deploy --stage dev [--region R] [--profile P] [--dry-run]
    python -m scripts.deploy --stage dev --delete [--delete-data]

In order: the Stripe secret (only when a key is given, from the
DEPLOY_STRIPE_API_KEY environment variable or --stripe-key-stdin; never an
argument, never printed; a stored key is replaced by a different one only
with --replace-stripe-key), the stage's Lambda environment and IAM policy
files (for the stage's contact-list mode), ``chalice deploy`` (the API, the
Cognito trigger and the task Lambdas), the DynamoDB table, the EventBridge
bus, the Step Functions role, log group and state machine (statemachine.json
with its placeholders filled from .chalice/deployed/STAGE.json), the Cognito
user pool and client with the post-confirmation trigger and the permission
for Cognito to invoke it, and the SES prerequisites of the stage's
contact-list mode. Every stage but dev gets deletion protection on its table
and its user pool.

STRIPE_API_KEY (the local stack's test key) is deliberately not read here.
--delete keeps the stage's data (the table, the user pool with every
tenant's login, the Stripe secret, the shared contact list) unless
--delete-data is given too.

Every resource is found by name first: a second run with nothing changed
changes nothing and says so. --dry-run prints the plan and changes nothing.
The values a frontend needs are printed and written to
.chalice/outputs-STAGE.json.
"""
import argparse
import getpass
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from scripts.deploy import policies
from scripts.deploy import template as provisioning
from scripts.deploy.template import APP_NAME, PROJECT_DIR, StageNames

CREATE, UPDATE, UNCHANGED, DELETE, SKIP = "create", "update", "unchanged", "delete", "skip"
STRIPE_KEY_VARIABLE = "DEPLOY_STRIPE_API_KEY"
STATES_LOG_RETENTION_DAYS = 30
COGNITO_PERMISSION_ID = "cognito-post-confirmation"


class DeployError(RuntimeError):
    """Something the person deploying can fix; printed without a traceback."""


@dataclass
class Outcome:
    action: str
    kind: str
    name: str
    note: str = ""

    def line(self) -> str:
        note = f"  ({self.note})" if self.note else ""
        return f"  {self.action:<9}  {self.kind:<24} {self.name}{note}"


class Deployer:
    def __init__(
        self,
        session: Any,
        stage: str,
        project_dir: Path = PROJECT_DIR,
        dry_run: bool = False,
        stripe_key: Optional[str] = None,
        chalice: Optional[Callable[[List[str]], None]] = None,
        say: Callable[[str], None] = print,
        replace_stripe_key: bool = False,
    ) -> None:
        self.session = session
        self.stage = stage
        self.names = StageNames(stage)
        self.project_dir = project_dir
        self.dry_run = dry_run
        self._stripe_key = stripe_key
        self._replace_stripe_key = replace_stripe_key
        self._chalice = chalice or self._run_chalice
        self._say = say
        self.region = session.region_name
        if not self.region:
            raise DeployError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
        self.outcomes: List[Outcome] = []
        self._clients: Dict[str, Any] = {}

    # --- helpers -------------------------------------------------------------------
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def _record(self, action: str, kind: str, name: str, note: str = "") -> str:
        outcome = Outcome(action, kind, name, note)
        self.outcomes.append(outcome)
        self._say(outcome.line())
        return action

    @property
    def changed(self) -> bool:
        return any(o.action in (CREATE, UPDATE, DELETE) for o in self.outcomes)

    @property
    def account(self) -> str:
        if "account" not in self._clients:
            self._clients["account"] = self.client("sts").get_caller_identity()["Account"]
        return self._clients["account"]

    @property
    def config_path(self) -> Path:
        return self.project_dir / ".chalice" / "config.json"

    @property
    def deployed_path(self) -> Path:
        return self.project_dir / ".chalice" / "deployed" / f"{self.stage}.json"

    def _stage_config(self) -> Dict[str, Any]:
        config = json.loads(self.config_path.read_text())
        if self.stage not in config.get("stages", {}):
            raise DeployError(
                f'stage "{self.stage}" is not in .chalice/config.json; add it (copy "dev")'
            )
        return config["stages"][self.stage]

    @property
    def contact_list_mode(self) -> str:
        env = self._stage_config().get("environment_variables", {})
        mode = env.get("CONTACT_LIST_MODE") or policies.LIST_PER_TENANT
        if mode not in policies.CONTACT_LIST_MODES:
            raise DeployError(
                f"CONTACT_LIST_MODE of stage {self.stage} is {mode!r}: expected one of "
                f"{', '.join(policies.CONTACT_LIST_MODES)}"
            )
        return mode

    @property
    def protected(self) -> bool:
        """Deletion protection on the table and the user pool: every stage but dev."""
        return self.stage != "dev"

    @property
    def legacy_shared_contact_list(self) -> str:
        """The shared list's name before it became ``tenants-<stage>``."""
        return self.names.prefix

    # --- deploy --------------------------------------------------------------------
    def deploy(self) -> Dict[str, Any]:
        self._say(
            f"{'Plan for' if self.dry_run else 'Deploying'} stage {self.stage} in "
            f"{self.region} (account {self.account}):"
        )
        self.check_shared_contact_list_name()
        stripe_on = self.stripe_secret()
        self.lambda_configuration(stripe_on)
        self.chalice_app()
        table = self.table()
        self.event_bus()
        functions = self.function_arns()
        role = self.state_machine_role(functions)
        log_group = self.log_group()
        machine = self.state_machine(functions, role, log_group)
        pool = self.user_pool(functions)
        self.cognito_permission(functions, pool)
        self.contact_list_prerequisites()
        outputs = {
            "stage": self.stage,
            "region": self.region,
            "apiUrl": self.api_url(),
            "userPoolId": pool.get("userPoolId"),
            "userPoolClientId": pool.get("userPoolClientId"),
            "stateMachineArn": machine,
            "tableName": self.names.table,
            "tableArn": table,
            "eventBusName": self.names.event_bus,
            "stripe": stripe_on,
            "contactListMode": self.contact_list_mode,
        }
        if not self.dry_run:
            path = self.project_dir / ".chalice" / f"outputs-{self.stage}.json"
            path.write_text(json.dumps(outputs, indent=2) + "\n")
        return outputs

    def check_shared_contact_list_name(self) -> None:
        """Stop before changing anything when the stage still has its shared
        list under the old name: SES allows one contact list per account and
        Region, so ``tenants-<stage>`` could not be created next to it, and
        the app would be pointed at a list that does not exist."""
        if self.contact_list_mode != policies.TOPIC_PER_TENANT:
            return
        sesv2 = self.client("sesv2")
        try:
            sesv2.get_contact_list(ContactListName=self.names.shared_contact_list)
            return
        except sesv2.exceptions.NotFoundException:
            pass
        try:
            sesv2.get_contact_list(ContactListName=self.legacy_shared_contact_list)
        except sesv2.exceptions.NotFoundException:
            return
        raise DeployError(
            f"stage {self.stage} has its shared SES contact list under the old name "
            f"{self.legacy_shared_contact_list}; the app now uses "
            f"{self.names.shared_contact_list}, and SES allows one contact list per account "
            f"and Region, so it cannot be created next to the old one. Move the topics (and "
            f"the tenant records' list attribute) to a list named "
            f"{self.names.shared_contact_list}, or delete the old list if nothing in it is "
            f"needed, then deploy again. Nothing was changed."
        )

    def stripe_secret(self) -> bool:
        """Store the key when one is given; Stripe is on when the secret exists.

        A stored key is never replaced by a different one unless asked
        (--replace-stripe-key): a key left in the environment for another
        purpose must not overwrite a stage's real secret.
        """
        secrets = self.client("secretsmanager")
        name = self.names.stripe_secret
        try:
            current = secrets.get_secret_value(SecretId=name).get("SecretString")
        except secrets.exceptions.ResourceNotFoundException:
            current = None
        if self._stripe_key is None:
            if current is None:
                self._record(SKIP, "Stripe secret", name, "no key given: Stripe stays off")
                return False
            self._record(UNCHANGED, "Stripe secret", name)
            return True
        if current == self._stripe_key:
            self._record(UNCHANGED, "Stripe secret", name)
        elif current is None:
            self._record(CREATE, "Stripe secret", name, "value not shown")
            if not self.dry_run:
                provisioning.put_stripe_secret(secrets, self.names, self._stripe_key)
        elif not self._replace_stripe_key:
            raise DeployError(
                f"the Stripe secret {name} already holds a different key; pass "
                f"--replace-stripe-key to replace it (neither key is shown). "
                f"Nothing was changed."
            )
        else:
            self._record(UPDATE, "Stripe secret", name, "new value, not shown")
            if not self.dry_run:
                provisioning.put_stripe_secret(secrets, self.names, self._stripe_key)
        return True

    def lambda_configuration(self, stripe_on: bool) -> None:
        """The stage's environment in .chalice/config.json and its policy files."""
        config = json.loads(self.config_path.read_text())
        stage = self._stage_config()
        env = dict(stage.get("environment_variables", {}))
        wanted = {
            **{k: v for k, v in self.names.environment(self.region, self.account).items()},
            "STRIPE_SECRET_ID": self.names.stripe_secret if stripe_on else "",
            "CONTACT_LIST_MODE": self.contact_list_mode,
        }
        lambda_functions = policies.stage_function_config(self.stage)
        differs = (
            any(env.get(k) != v for k, v in wanted.items())
            or stage.get("autogen_policy") is not False
            or stage.get("lambda_functions") != lambda_functions
        )
        mode = self.contact_list_mode
        policy_texts = {
            policies.policy_file(self.stage, fn): json.dumps(doc, indent=2) + "\n"
            for fn, doc in policies.policies(self.stage, mode).items()
        }
        stale_policies = [
            f for f, text in policy_texts.items()
            if not (self.project_dir / ".chalice" / f).exists()
            or (self.project_dir / ".chalice" / f).read_text() != text
        ]
        if not differs and not stale_policies:
            self._record(UNCHANGED, "Lambda configuration", f".chalice/config.json[{self.stage}]")
            return
        self._record(
            UPDATE, "Lambda configuration", f".chalice/config.json[{self.stage}]",
            "environment and least-privilege policy files",
        )
        if self.dry_run:
            return
        env.update(wanted)
        stage.update(
            environment_variables=env, autogen_policy=False, lambda_functions=lambda_functions
        )
        config["stages"][self.stage] = stage
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")
        policies.write_policy_files(self.stage, mode, self.project_dir)

    def _app_fingerprint(self) -> str:
        """What chalice deploy ships: unchanged fingerprint, nothing to deploy."""
        digest = hashlib.sha256()
        files = [self.project_dir / "app.py", self.project_dir / "requirements.txt",
                 self.config_path]
        files += sorted((self.project_dir / "chalicelib").rglob("*.py"))
        files += sorted((self.project_dir / ".chalice").glob(f"policy-{self.stage}-*.json"))
        for path in files:
            if path.exists():
                digest.update(str(path.relative_to(self.project_dir)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def chalice_app(self) -> None:
        stamp = self.deployed_path.with_suffix(".fingerprint")
        fingerprint = self._app_fingerprint()
        if self.deployed_path.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            self._record(UNCHANGED, "Chalice app", f"{self.names.prefix}-*")
            return
        action = UPDATE if self.deployed_path.exists() else CREATE
        self._record(action, "Chalice app", f"{self.names.prefix}-*",
                     "API, trigger and task Lambdas via chalice deploy")
        if self.dry_run:
            return
        self._chalice(["deploy", "--stage", self.stage])
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)

    def function_arns(self) -> Dict[str, str]:
        if not self.deployed_path.exists():
            if self.dry_run:  # first run: chalice has not created them yet
                return {
                    name: self.names.function_arn(name, self.region, self.account)
                    for name in provisioning.TASK_FUNCTIONS + (provisioning.TRIGGER_FUNCTION,)
                }
            raise DeployError(f"{self.deployed_path} is missing: did chalice deploy fail?")
        deployed = json.loads(self.deployed_path.read_text())
        arns = {
            r["name"]: r["lambda_arn"]
            for r in deployed.get("resources", [])
            if r.get("resource_type") == "lambda_function"
        }
        missing = set(provisioning.TASK_FUNCTIONS + (provisioning.TRIGGER_FUNCTION,)) - set(arns)
        if missing:
            raise DeployError(f"{self.deployed_path} lacks function(s): {', '.join(sorted(missing))}")
        return arns

    def api_url(self) -> Optional[str]:
        if not self.deployed_path.exists():
            return None
        for resource in json.loads(self.deployed_path.read_text()).get("resources", []):
            if resource.get("resource_type") == "rest_api":
                return resource.get("rest_api_url")
        return None

    def table(self) -> str:
        ddb = self.client("dynamodb")
        name = self.names.table
        protect = self.protected
        try:
            table = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            self._record(CREATE, "DynamoDB table", name,
                         f"on-demand, PITR on{', deletion protection on' if protect else ''}")
            if self.dry_run:
                return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
            arn = provisioning.ensure_table(ddb, self.names, deletion_protection=protect)
            provisioning.enable_point_in_time_recovery(ddb, self.names)
            return arn
        changes = []
        pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        if pitr.get("PointInTimeRecoveryDescription", {}).get(
            "PointInTimeRecoveryStatus"
        ) != "ENABLED":
            changes.append("PITR on")
        if protect and not table.get("DeletionProtectionEnabled"):
            changes.append("deletion protection on")
        missing_indexes = provisioning.missing_indexes(table)
        if missing_indexes:
            changes.append(f"add index {', '.join(missing_indexes)}")
        stale_indexes = provisioning.stale_indexes(table)
        for index in stale_indexes:
            changes.append(f"recreate index {index} with the listed attributes only "
                           "(listing unavailable until it is backfilled)")
        if not changes:
            self._record(UNCHANGED, "DynamoDB table", name)
            return table["TableArn"]
        self._record(UPDATE, "DynamoDB table", name, ", ".join(changes))
        if not self.dry_run:
            if "PITR on" in changes:
                provisioning.enable_point_in_time_recovery(ddb, self.names)
            if protect and "deletion protection on" in changes:
                ddb.update_table(TableName=name, DeletionProtectionEnabled=True)
            if missing_indexes:
                provisioning.add_missing_indexes(ddb, self.names, table)
            for index in stale_indexes:
                try:
                    provisioning.replace_index(ddb, self.names, index)
                except TimeoutError as error:
                    raise DeployError(str(error)) from None
        return table["TableArn"]

    def event_bus(self) -> None:
        events = self.client("events")
        try:
            events.describe_event_bus(Name=self.names.event_bus)
            self._record(UNCHANGED, "EventBridge bus", self.names.event_bus)
        except events.exceptions.ResourceNotFoundException:
            self._record(CREATE, "EventBridge bus", self.names.event_bus)
            if not self.dry_run:
                provisioning.ensure_event_bus(events, self.names)

    def state_machine_role(self, functions: Dict[str, str]) -> str:
        iam = self.client("iam")
        name = self.names.state_machine_role
        task_arns = [functions[n] for n in provisioning.TASK_FUNCTIONS]
        wanted = provisioning.state_machine_role_policy(task_arns)
        try:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            self._record(CREATE, "IAM role", name, "may invoke exactly the task Lambdas")
            if self.dry_run:
                return f"arn:aws:iam::{self.account}:role/{name}"
            return provisioning.ensure_state_machine_role(iam, self.names, task_arns)
        try:
            current = iam.get_role_policy(
                RoleName=name, PolicyName=provisioning.STATE_MACHINE_POLICY
            )["PolicyDocument"]
            if isinstance(current, str):
                from urllib.parse import unquote

                current = json.loads(unquote(current))
        except iam.exceptions.NoSuchEntityException:
            current = None
        if current == wanted:
            self._record(UNCHANGED, "IAM role", name)
        else:
            self._record(UPDATE, "IAM role", name, "policy")
            if not self.dry_run:
                provisioning.ensure_state_machine_role(iam, self.names, task_arns)
        return arn

    def log_group(self) -> str:
        logs = self.client("logs")
        name = self.names.state_machine_log_group
        arn = f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}:*"
        found = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if any(g["logGroupName"] == name for g in found):
            self._record(UNCHANGED, "CloudWatch log group", name)
            return arn
        self._record(CREATE, "CloudWatch log group", name,
                     f"retention {STATES_LOG_RETENTION_DAYS} days")
        if not self.dry_run:
            logs.create_log_group(logGroupName=name)
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=STATES_LOG_RETENTION_DAYS
            )
        return arn

    def state_machine(self, functions: Dict[str, str], role: str, log_group: str) -> str:
        sfn = self.client("stepfunctions")
        arn = self.names.state_machine_arn(self.region, self.account)
        definition = provisioning.render_definition(
            provisioning.load_template(self.project_dir),
            {n: functions[n] for n in provisioning.TASK_FUNCTIONS},
        )
        logging_config = provisioning.state_machine_logging(log_group)
        try:
            current = sfn.describe_state_machine(stateMachineArn=arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            self._record(CREATE, "Step Functions machine", self.names.state_machine, "STANDARD")
            if not self.dry_run:
                provisioning.ensure_state_machine(sfn, self.names, definition, role, logging_config)
            return arn
        differences = []
        if json.loads(current["definition"]) != json.loads(definition):
            differences.append("definition")
        if current["roleArn"] != role:
            differences.append("role")
        if not provisioning.same_logging(current.get("loggingConfiguration"), logging_config):
            differences.append("logging")
        if not differences:
            self._record(UNCHANGED, "Step Functions machine", self.names.state_machine)
            return arn
        self._record(UPDATE, "Step Functions machine", self.names.state_machine,
                     ", ".join(differences))
        if not self.dry_run:
            provisioning.ensure_state_machine(sfn, self.names, definition, role, logging_config)
        return arn

    def user_pool(self, functions: Dict[str, str]) -> Dict[str, Optional[str]]:
        cognito = self.client("cognito-idp")
        trigger = functions[provisioning.TRIGGER_FUNCTION]
        protect = self.protected
        pool_id = provisioning.find_user_pool(cognito, self.names.user_pool)
        if pool_id is None:
            self._record(CREATE, "Cognito user pool", self.names.user_pool,
                         "email sign-in, name required, trigger wired"
                         + (", deletion protection on" if protect else ""))
            self._record(CREATE, "Cognito app client", self.names.user_pool_client, "no secret")
            if self.dry_run:
                return {"userPoolId": None, "userPoolClientId": None}
            return provisioning.ensure_user_pool(cognito, self.names, trigger, protect)
        pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        differences = provisioning.user_pool_differences(pool, self.names, trigger, protect)
        if differences:
            self._record(UPDATE, "Cognito user pool", self.names.user_pool, ", ".join(differences))
            if not self.dry_run:
                provisioning.update_user_pool(cognito, pool_id, self.names, trigger, protect)
        else:
            self._record(UNCHANGED, "Cognito user pool", self.names.user_pool)
        client_id = provisioning.find_user_pool_client(
            cognito, pool_id, self.names.user_pool_client
        )
        if client_id is None:
            self._record(CREATE, "Cognito app client", self.names.user_pool_client, "no secret")
            if not self.dry_run:
                client_id = provisioning.ensure_user_pool(cognito, self.names, trigger, protect)[
                    "userPoolClientId"
                ]
        else:
            self._record(UNCHANGED, "Cognito app client", self.names.user_pool_client)
        return {"userPoolId": pool_id, "userPoolClientId": client_id}

    def cognito_permission(self, functions: Dict[str, str], pool: Dict[str, Any]) -> None:
        lam = self.client("lambda")
        trigger = functions[provisioning.TRIGGER_FUNCTION]
        label = f"{self.names.function(provisioning.TRIGGER_FUNCTION)}:{COGNITO_PERMISSION_ID}"
        pool_id = pool.get("userPoolId")
        source = (
            f"arn:aws:cognito-idp:{self.region}:{self.account}:userpool/{pool_id}"
            if pool_id else None
        )
        try:
            statements = json.loads(lam.get_policy(FunctionName=trigger)["Policy"])["Statement"]
        except lam.exceptions.ResourceNotFoundException:
            statements = []
        current = next((s for s in statements if s.get("Sid") == COGNITO_PERMISSION_ID), None)
        current_source = (
            (current or {}).get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
        )
        if current and current_source == source:
            self._record(UNCHANGED, "Lambda permission", label)
            return
        self._record(UPDATE if current else CREATE, "Lambda permission", label,
                     "Cognito may invoke the trigger")
        if self.dry_run or source is None:
            return
        if current:
            lam.remove_permission(FunctionName=trigger, StatementId=COGNITO_PERMISSION_ID)
        lam.add_permission(
            FunctionName=trigger,
            StatementId=COGNITO_PERMISSION_ID,
            Action="lambda:InvokeFunction",
            Principal="cognito-idp.amazonaws.com",
            SourceArn=source,
        )

    def contact_list_prerequisites(self) -> None:
        mode = self.contact_list_mode
        if mode == "list-per-tenant":
            self._say(
                "  WARNING: contact-list mode list-per-tenant creates one SES contact list "
                "per tenant, but an AWS account holds only ONE contact list per Region: "
                "onboarding fails from the second tenant on. Set CONTACT_LIST_MODE to "
                "topic-per-tenant for this stage in .chalice/config.json (README, "
                '"SES contact lists").'
            )
            self._record(SKIP, "SES contact list", "(one per tenant)", "made by onboarding")
            return
        sesv2 = self.client("sesv2")
        name = self.names.shared_contact_list
        try:
            sesv2.get_contact_list(ContactListName=name)
            self._record(UNCHANGED, "SES contact list", name, "shared, one topic per tenant")
        except sesv2.exceptions.NotFoundException:
            self._record(CREATE, "SES contact list", name, "shared, one topic per tenant")
            if not self.dry_run:
                provisioning.ensure_shared_contact_list(sesv2, self.names)

    # --- delete --------------------------------------------------------------------
    def delete(self, delete_data: bool) -> None:
        self._say(
            f"{'Plan to delete' if self.dry_run else 'Deleting'} stage {self.stage} in "
            f"{self.region} (account {self.account}):"
        )
        sfn = self.client("stepfunctions")
        machine = self.names.state_machine_arn(self.region, self.account)
        try:
            sfn.describe_state_machine(stateMachineArn=machine)
            self._record(DELETE, "Step Functions machine", self.names.state_machine)
            if not self.dry_run:
                sfn.delete_state_machine(stateMachineArn=machine)
        except sfn.exceptions.StateMachineDoesNotExist:
            pass
        iam = self.client("iam")
        try:
            iam.get_role(RoleName=self.names.state_machine_role)
            self._record(DELETE, "IAM role", self.names.state_machine_role)
            if not self.dry_run:
                for policy in iam.list_role_policies(RoleName=self.names.state_machine_role)[
                    "PolicyNames"
                ]:
                    iam.delete_role_policy(RoleName=self.names.state_machine_role, PolicyName=policy)
                iam.delete_role(RoleName=self.names.state_machine_role)
        except iam.exceptions.NoSuchEntityException:
            pass
        logs = self.client("logs")
        name = self.names.state_machine_log_group
        if any(g["logGroupName"] == name
               for g in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])):
            self._record(DELETE, "CloudWatch log group", name)
            if not self.dry_run:
                logs.delete_log_group(logGroupName=name)
        if self.deployed_path.exists():
            self._record(DELETE, "Chalice app", f"{self.names.prefix}-*", "chalice delete")
            if not self.dry_run:
                self._chalice(["delete", "--stage", self.stage])
                self.deployed_path.with_suffix(".fingerprint").unlink(missing_ok=True)
        events = self.client("events")
        try:
            events.describe_event_bus(Name=self.names.event_bus)
            self._record(DELETE, "EventBridge bus", self.names.event_bus)
            if not self.dry_run:
                events.delete_event_bus(Name=self.names.event_bus)
        except events.exceptions.ResourceNotFoundException:
            pass
        self._delete_data(delete_data)
        if not self.dry_run:
            (self.project_dir / ".chalice" / f"outputs-{self.stage}.json").unlink(missing_ok=True)

    def _delete_data(self, delete_data: bool) -> None:
        ddb = self.client("dynamodb")
        secrets = self.client("secretsmanager")
        sesv2 = self.client("sesv2")
        cognito = self.client("cognito-idp")
        kept = []
        pool_id = provisioning.find_user_pool(cognito, self.names.user_pool)
        if pool_id and delete_data:
            protected = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"].get(
                "DeletionProtection"
            ) == "ACTIVE"
            self._record(DELETE, "Cognito user pool", self.names.user_pool,
                         "and its users: every tenant's login"
                         + ("; deletion protection turned off first" if protected else ""))
            if not self.dry_run:
                if protected:
                    provisioning.set_user_pool_deletion_protection(cognito, pool_id, active=False)
                cognito.delete_user_pool(UserPoolId=pool_id)
        elif pool_id:
            kept.append(f"Cognito user pool {self.names.user_pool} (every tenant's login; "
                        "sign-up confirmations fail until the stage is deployed again)")
        try:
            ddb.describe_table(TableName=self.names.table)
            if delete_data:
                self._record(DELETE, "DynamoDB table", self.names.table, "every tenant record")
                if not self.dry_run:
                    ddb.update_table(TableName=self.names.table, DeletionProtectionEnabled=False)
                    ddb.delete_table(TableName=self.names.table)
            else:
                kept.append(f"DynamoDB table {self.names.table}")
        except ddb.exceptions.ResourceNotFoundException:
            pass
        try:
            secrets.describe_secret(SecretId=self.names.stripe_secret)
            if delete_data:
                self._record(DELETE, "Stripe secret", self.names.stripe_secret,
                             "recoverable for 7 days")
                if not self.dry_run:
                    secrets.delete_secret(SecretId=self.names.stripe_secret, RecoveryWindowInDays=7)
            else:
                kept.append(f"Stripe secret {self.names.stripe_secret}")
        except secrets.exceptions.ResourceNotFoundException:
            pass
        try:
            sesv2.get_contact_list(ContactListName=self.names.shared_contact_list)
            if delete_data:
                self._record(DELETE, "SES contact list", self.names.shared_contact_list)
                if not self.dry_run:
                    sesv2.delete_contact_list(ContactListName=self.names.shared_contact_list)
            else:
                kept.append(f"SES contact list {self.names.shared_contact_list}")
        except sesv2.exceptions.NotFoundException:
            pass
        for item in kept:
            self._record(SKIP, "kept (data)", item, "pass --delete-data to delete")

    # --- chalice ---------------------------------------------------------------------
    def _run_chalice(self, args: List[str]) -> None:
        chalice = Path(sys.executable).with_name("chalice")
        command = [str(chalice)]
        profile = getattr(self.session, "profile_name", None)
        if profile and profile != "default":
            command += ["--profile", profile]
        env = {**os.environ, "AWS_DEFAULT_REGION": self.region}
        result = subprocess.run(command + args, cwd=self.project_dir, env=env)
        if result.returncode != 0:
            raise DeployError(f"chalice {' '.join(args)} failed (exit {result.returncode})")


def read_stripe_key(from_stdin: bool) -> Optional[str]:
    """The key comes from DEPLOY_STRIPE_API_KEY or stdin, never from argv.

    Not from STRIPE_API_KEY: that is the local stack's (a test key the
    README has developers export), and must not reach a stage's secret.
    """
    if from_stdin:
        key = getpass.getpass("Stripe secret key: ") if sys.stdin.isatty() else sys.stdin.readline()
        key = key.strip()
        if not key:
            raise DeployError("no Stripe key on stdin")
        return key
    return os.environ.get(STRIPE_KEY_VARIABLE, "").strip() or None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=f"deploy a stage of {APP_NAME} to AWS")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument("--delete", action="store_true", help="tear the stage down")
    parser.add_argument("--delete-data", action="store_true",
                        help="with --delete: also the table, the user pool (every tenant's "
                             "login), the Stripe secret and the shared list")
    parser.add_argument("--stripe-key-stdin", action="store_true",
                        help=f"read the Stripe secret key from stdin (else {STRIPE_KEY_VARIABLE})")
    parser.add_argument("--replace-stripe-key", action="store_true",
                        help="allow replacing a stored Stripe key with a different one")
    args = parser.parse_args(argv)
    if args.delete_data and not args.delete:
        parser.error("--delete-data only goes with --delete")

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        stripe_key = None if args.delete else read_stripe_key(args.stripe_key_stdin)
        if stripe_key is None and not args.delete and os.environ.get("STRIPE_API_KEY"):
            print(f"note: STRIPE_API_KEY is the local stack's and is ignored here; give a "
                  f"stage's key as {STRIPE_KEY_VARIABLE} or with --stripe-key-stdin",
                  file=sys.stderr)
        deployer = Deployer(
            session, args.stage, project_dir=PROJECT_DIR, dry_run=args.dry_run,
            stripe_key=stripe_key, replace_stripe_key=args.replace_stripe_key,
        )
        if args.delete:
            deployer.delete(args.delete_data)
        else:
            outputs = deployer.deploy()
    except (DeployError, BotoCoreError, ClientError) as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    if not deployer.changed:
        print(f"Nothing to change: stage {args.stage} is up to date.")
    if args.dry_run:
        print("Dry run: nothing was changed.")
    if not args.delete:
        print(
            f"\nFrontend settings (also in .chalice/outputs-{args.stage}.json):\n"
            f"  API URL              {outputs['apiUrl']}\n"
            f"  user pool id         {outputs['userPoolId']}\n"
            f"  user pool client id  {outputs['userPoolClientId']}\n"
            f"  region               {outputs['region']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
