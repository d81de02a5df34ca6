"""``make deploy STAGE=<stage>``: one CloudFormation stack per stage, driven thinly.

    python -m scripts.deploy --stage dev [--region R] [--profile P] [--dry-run]
    python -m scripts.deploy --stage dev --delete [--delete-data [--yes]]

In order: the Stripe secret (only when a key is given, from
DEPLOY_STRIPE_API_KEY or --stripe-key-stdin; never an argument, never
printed, never in the template: it lives outside the stack and the template
only names it), ``make package`` (build/<stage>/), the artifacts uploaded to
the account's artifacts bucket (by content hash: unchanged code uploads
nothing), a change set printed as a plan, then executed with the stack's
events shown as they happen. CloudFormation rolls a failed deploy back; this
script then prints the first resource that failed and why. The stack's
outputs are printed and written to .chalice/outputs-<stage>.json, where the
admin CLI finds them.

--delete deletes the stack; the tenant table and the two user pools are retained
(DeletionPolicy Retain), and so are the Stripe secret and the shared SES
list, which live outside the stack. --delete-data removes those too, after
asking (or with --yes); the secret stays recoverable for 7 days, and a
deploy in that time restores it.

Every wait has a limit (--change-set-timeout, --stack-timeout): past it the
deploy stops with one line saying what it waited for and where to look;
CloudFormation carries on by itself.
"""
import argparse
import getpass
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.deploy import template as stack_template
from scripts.shared import APP_NAME, PROJECT_DIR, TimedOut, eventually, stack_name, stripe_secret_name

STRIPE_KEY_VARIABLE = "DEPLOY_STRIPE_API_KEY"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
POLL_SECONDS = 5
# How long the deploy waits before it stops and says where to look. A change set of this
# stack is ready in seconds; creating, updating or deleting the stack takes minutes, and
# rolling back a failed update longer. CloudFormation goes on regardless.
CHANGE_SET_TIMEOUT_SECONDS = 5 * 60
STACK_TIMEOUT_SECONDS = 60 * 60
# What CloudFormation answers for a change set that changes nothing.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
ROLLED_BACK = ("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
               "UPDATE_ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_COMPLETE",
               "IMPORT_ROLLBACK_FAILED")
# Stacks in these states take no change set; each gets one line saying what to do.
STUCK = {
    "ROLLBACK_COMPLETE": "its first deploy failed and was rolled back, and a stack in this "
    "state can only be deleted: run make deploy STAGE={stage} DEPLOY_ARGS=--delete, "
    "then deploy again",
    "ROLLBACK_FAILED": "its first deploy failed and so did the rollback: delete it "
    "(make deploy STAGE={stage} DEPLOY_ARGS=--delete), then deploy again",
    "UPDATE_ROLLBACK_FAILED": "an update failed and its rollback did too: continue the "
    "rollback (aws cloudformation continue-update-rollback --stack-name {stack}, or in "
    "the CloudFormation console), then deploy again",
    "DELETE_FAILED": "an earlier delete failed: run make deploy STAGE={stage} "
    "DEPLOY_ARGS=--delete again (its events say which resource held it)",
}
# Outputs -> the keys the admin CLI and the README use.
# the stack's outputs: template.json's, and the API's URL chalice package adds
OUTPUT_KEYS = {"EndpointURL": "apiUrl", **stack_template.OUTPUT_KEYS}


class DeployError(RuntimeError):
    """Something the person deploying can fix; printed as one line, no traceback."""


@dataclass(frozen=True)
class PlannedChange:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional (Modify only)
    causes: tuple[str, ...] = ()

    def line(self) -> str:
        verb = {"Add": "add", "Modify": "modify", "Remove": "remove", "Import": "import"}.get(
            self.action, self.action.lower()
        )
        if self.action == "Modify" and self.replacement == "True":
            verb = "REPLACE"
        elif self.action == "Modify" and self.replacement == "Conditional":
            verb = "modify?"
        causes = f"  ({', '.join(self.causes)})" if self.causes else ""
        note = ""
        if verb == "REPLACE":
            note = "  <- a new resource replaces this one"
        elif verb == "modify?":
            note = "  <- may be replaced, depending on values known only while it runs"
        return f"  {verb:<8} {self.resource_type:<38} {self.logical_id}{causes}{note}"


def duration(seconds: float) -> str:
    """A wait as a person says it: 90 s, 5 min, 1 h 30 min."""
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else (
        f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else ""))


def parse_duration(text: str) -> float:
    """--change-set-timeout and --stack-timeout: seconds, or with a unit (90s, 5m, 1h)."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 300, 90s, 5m, 1h)")
    return seconds


def plan_summary(changes: list[PlannedChange]) -> str:
    count = {a: sum(1 for c in changes if c.action == a) for a in ("Add", "Modify", "Remove")}
    replaced = sum(1 for c in changes if c.replacement in ("True", "Conditional"))
    return (f"  {count['Add']} to add, {count['Modify']} to modify ({replaced} replaced or "
            f"possibly replaced), {count['Remove']} to remove")


class Deployer:
    """The stage's stack: package, upload, change set, plan, execute, outputs."""

    def __init__(
        self,
        session: Any,
        stage: str,
        project_dir: Path = PROJECT_DIR,
        say: Callable[[str], None] = print,
        package: Callable[[str], Path] | None = None,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
        change_set_timeout: float = CHANGE_SET_TIMEOUT_SECONDS,
        stack_timeout: float = STACK_TIMEOUT_SECONDS,
    ) -> None:
        self.session = session
        self.stage = stage
        self.stack = stack_name(stage)
        self.project_dir = project_dir
        self._say = say
        self._package = package or self._build
        self._poll = poll_seconds
        self._clock = clock
        self._change_set_timeout = change_set_timeout
        self._stack_timeout = stack_timeout
        self._clients: dict[str, Any] = {}
        self._stack_id: str | None = None
        self._following = False
        self._tenant_places: dict[str, list[str]] = {}  # what --delete-data removes per tenant
        self._secret_scheduled = False  # the Stripe secret awaits its deletion already
        self.region = session.region_name
        if not self.region:
            raise DeployError("no AWS region: pass --region R (DEPLOY_ARGS) or set AWS_DEFAULT_REGION")
        stack_template.check_stage_name(stage)  # before Lambda refuses a name half-way
        stack_template.stage_config(stage, project_dir)  # an unknown stage stops here
        stack_template.stage_ses_sender(stage, project_dir)  # and so does a sender SES would refuse

    # --- clients and identity ------------------------------------------------------
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    @property
    def account(self) -> str:
        if "account" not in self._clients:
            from botocore.exceptions import NoCredentialsError

            try:
                self._clients["account"] = self.client("sts").get_caller_identity()["Account"]
            except NoCredentialsError:
                raise DeployError(
                    "no AWS credentials: set a profile (--profile P in DEPLOY_ARGS, or "
                    "AWS_PROFILE) or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables"
                ) from None
        return self._clients["account"]

    @property
    def outputs_path(self) -> Path:
        return self.project_dir / ".chalice" / f"outputs-{self.stage}.json"

    # --- the stack as it is ---------------------------------------------------------
    def describe(self) -> dict[str, Any] | None:
        """The stack, or None. By id once known: a deleted stack is found only by id."""
        cfn = self.client("cloudformation")
        try:
            stack = cfn.describe_stacks(StackName=self._stack_id or self.stack)["Stacks"][0]
        except cfn.exceptions.ClientError as error:
            if "does not exist" in str(error):
                return None
            raise
        self._stack_id = stack.get("StackId") or self._stack_id
        if stack["StackStatus"] == "DELETE_COMPLETE" and not self._following:
            return None
        return stack

    def check_deployable(self, stack: dict[str, Any] | None) -> None:
        if stack is None:
            return
        status = stack["StackStatus"]
        if status in STUCK:
            raise DeployError(
                f"stack {self.stack} is {status}: "
                + STUCK[status].format(stage=self.stage, stack=self.stack)
            )
        if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
            raise DeployError(
                f"stack {self.stack} is {status}: another operation is running on it; "
                "wait until it ends (its events are in the CloudFormation console)"
            )

    def check_no_orphaned_data(self) -> None:
        """A new stack cannot create the table or pool that an earlier one left behind."""
        names = stack_template.retained_names(self.stage)
        ddb = self.client("dynamodb")
        try:
            ddb.describe_table(TableName=names["TenantTable"])
            found = f"table {names['TenantTable']}"
        except ddb.exceptions.ResourceNotFoundException:
            found = ""
        for pool in ("UserPool", "AdminUserPool"):
            if not found and self.find_user_pool(names[pool]):
                found = f"user pool {names[pool]}"
        if found:
            raise DeployError(
                f"the {found} of an earlier {self.stack} stack still exists (kept when that "
                "stack was deleted) and a new stack cannot create one of the same name. "
                "Bring it back with a resource import (docs/deploy.md, 'After "
                "--delete'), or remove it with DEPLOY_ARGS='--delete --delete-data'. "
                "Nothing was changed."
            )

    def find_user_pool(self, name: str) -> str | None:
        cognito = self.client("cognito-idp")
        for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
            for pool in page["UserPools"]:
                if pool["Name"] == name:
                    return pool["Id"]
        return None

    # --- deploy ----------------------------------------------------------------------
    def deploy(
        self,
        dry_run: bool = False,
        stripe_key: str | None = None,
        replace_stripe_key: bool = False,
    ) -> dict[str, Any]:
        account = self.account
        self._say(f"{'Plan for' if dry_run else 'Deploying'} stack {self.stack} "
                  f"in {self.region} (account {account}):")
        stack = self.describe()
        self.check_deployable(stack)
        creating = stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS"
        if creating:
            self.check_no_orphaned_data()
        if stack_template.stage_contact_list_mode(self.stage, self.project_dir) == "list-per-tenant":
            self._say(
                "  WARNING: contact-list mode list-per-tenant creates one SES contact list per "
                "tenant, but an AWS account holds only ONE contact list per Region: onboarding "
                "fails from the second tenant on. Set CONTACT_LIST_MODE to topic-per-tenant for "
                "this stage in .chalice/config.json (docs/contact-lists.md)."
            )
        stripe_on = self.stripe_secret(stripe_key, replace_stripe_key, dry_run)
        template_path = self._package(self.stage)
        template_url = self.upload(template_path)
        change_set = self.create_change_set(template_url, creating, stripe_on)
        changes = self.plan(change_set)
        self.say_cognito_mail()
        if changes is None:
            self._say(f"Nothing to change: stage {self.stage} is up to date.")
        elif dry_run:
            self._discard(change_set, creating)
            self._say("Dry run: the change set was deleted; nothing was changed.")
            return {}
        else:
            self.execute(change_set)
        outputs = self.outputs()
        if outputs.get("tableName"):
            self.backfill_email_keys(outputs["tableName"])
        self.outputs_path.write_text(json.dumps(outputs, indent=2) + "\n")
        return outputs

    def backfill_email_keys(self, table: str) -> None:
        """Records from before the byEmail index get their emailKey (scripts/deploy/backfill.py):
        the console's email search finds them too. A failure leaves the stack as deployed."""
        from scripts.deploy.backfill import backfill_email_keys

        try:
            written = backfill_email_keys(self.client("dynamodb"), table)
        except Exception as error:  # the deploy itself succeeded
            self._say(f"  WARNING: could not give older tenant records their emailKey ({error}); "
                      f"run: python -m scripts.deploy.backfill --table {table}")
            return
        if written:
            self._say(f"  {written} older tenant record(s) given an emailKey (email search finds them now).")

    def say_cognito_mail(self) -> None:
        """How the stage's user pools send mail; Cognito's own email has a daily cap."""
        sender = stack_template.stage_ses_sender(self.stage, self.project_dir)
        if sender is None:
            self._say(
                f"  WARNING: Cognito mail: stage {self.stage} has no SES sender "
                f"({stack_template.SES_SENDER_KEY} in .chalice/config.json), so both user pools "
                f"send with Cognito's own email: at most {stack_template.COGNITO_DEFAULT_EMAILS_A_DAY} "
                "messages a day for the whole AWS account, after which sign-up codes and admin "
                "invitations are not sent (docs/deploy.md, 'Cognito mail')."
            )
        else:
            self._say(f"  Cognito mail: through SES, from {sender.address} ({sender.identity_arn})")

    def stripe_secret(self, key: str | None, replace: bool, dry_run: bool) -> bool:
        """Store the key when one is given; Stripe is on when the secret exists.

        A stored key is replaced by a different one only when asked: a key
        left in the environment for another purpose must not overwrite a
        stage's real secret. A secret that --delete-data scheduled for
        deletion is restored first (a dry run only says it would be). The
        value is never printed.
        """
        secrets = self.client("secretsmanager")
        name = stripe_secret_name(self.stage)
        restored = ""
        try:
            current = secrets.get_secret_value(SecretId=name).get("SecretString")
        except secrets.exceptions.ResourceNotFoundException:
            current = None
        except secrets.exceptions.InvalidRequestException:
            deleted_on = self.stripe_secret_deletion_date()
            if deleted_on is None:  # refused for another reason: AWS's own words
                raise
            if dry_run:
                self._say(f"  Stripe: on (secret {name} is scheduled for deletion on {deleted_on}; "
                          "the deploy would restore it first; value not shown)")
                return True
            current = self.restore_stripe_secret(deleted_on)
            restored = f"; restored: it was scheduled for deletion on {deleted_on}"
        if key is None:
            self._say(f"  Stripe: on (secret {name}{restored})" if current is not None
                      else "  Stripe: off (no key given)")
            return current is not None
        if current is not None and current != key and not replace:
            raise DeployError(
                f"the Stripe secret {name} already holds a different key; pass "
                "--replace-stripe-key to replace it (neither key is shown). "
                + ("It was restored from its scheduled deletion; nothing else was changed."
                   if restored else "Nothing was changed.")
            )
        if current == key:
            self._say(f"  Stripe: on (secret {name}, unchanged{restored})")
        elif dry_run:
            self._say(f"  Stripe: on (secret {name} would be {'replaced' if current else 'created'}; "
                      "value not shown)")
        elif current is None and not restored:
            secrets.create_secret(Name=name, SecretString=key,
                                  Description=f"Stripe secret key of {self.stack}")
            self._say(f"  Stripe: on (secret {name} created; value not shown)")
        else:
            secrets.put_secret_value(SecretId=name, SecretString=key)
            self._say(f"  Stripe: on (secret {name} replaced{restored}; value not shown)")
        return True

    def stripe_secret_deletion_date(self) -> str | None:
        """When the stage's Stripe secret goes for good, if it is scheduled for deletion."""
        secrets = self.client("secretsmanager")
        try:
            deleted = secrets.describe_secret(SecretId=stripe_secret_name(self.stage)).get("DeletedDate")
        except secrets.exceptions.ResourceNotFoundException:
            return None
        return f"{deleted:%Y-%m-%d}" if deleted else None

    def restore_stripe_secret(self, deleted_on: str) -> str | None:
        """Cancel the deletion --delete-data scheduled; the restored value (never printed)."""
        from botocore.exceptions import ClientError

        secrets = self.client("secretsmanager")
        name = stripe_secret_name(self.stage)
        try:
            secrets.restore_secret(SecretId=name)
        except ClientError as error:
            raise DeployError(
                f"the Stripe secret {name} is scheduled for deletion on {deleted_on} (by --delete "
                f"--delete-data) and could not be restored ({error.response['Error'].get('Code')}): "
                f"restore it with aws secretsmanager restore-secret --secret-id {name}, then "
                "deploy again. Nothing was changed."
            ) from None
        return secrets.get_secret_value(SecretId=name).get("SecretString")

    def _build(self, stage: str) -> Path:
        from scripts.deploy import package

        self._say(f"  packaging (make package STAGE={stage}) ...")
        try:
            return package.build(stage, project_dir=self.project_dir)
        except package.PackageError as error:
            raise DeployError(str(error)) from None

    # --- artifacts -------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        return f"{APP_NAME}-artifacts-{self.account}-{self.region}"

    def ensure_bucket(self) -> None:
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=self.bucket)
            return
        except s3.exceptions.ClientError:
            pass
        extra = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}
        }
        s3.create_bucket(Bucket=self.bucket, **extra)
        s3.put_public_access_block(
            Bucket=self.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
            },
        )
        self._say(f"  created the artifacts bucket {self.bucket} (private)")

    def put_artifact(self, body: bytes, suffix: str) -> str:
        """Store by content hash (unchanged code, same key); returns the key."""
        s3 = self.client("s3")
        key = f"{self.stage}/{hashlib.sha256(body).hexdigest()}{suffix}"
        try:
            s3.head_object(Bucket=self.bucket, Key=key)
        except s3.exceptions.ClientError:
            s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def upload(self, template_path: Path) -> str:
        """Upload the zips the template names, point it at them, upload it; its URL."""
        self.ensure_bucket()
        template = json.loads(template_path.read_text())
        for resource in template["Resources"].values():
            properties = resource.get("Properties", {})
            for field in ("CodeUri", "ContentUri"):
                local = properties.get(field)
                if isinstance(local, str) and not local.startswith("s3://"):
                    body = (template_path.parent / local).read_bytes()
                    properties[field] = f"s3://{self.bucket}/{self.put_artifact(body, '.zip')}"
        text = json.dumps(template, indent=2, sort_keys=True).encode()
        key = self.put_artifact(text, ".template.json")
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    # --- change set --------------------------------------------------------------------
    def create_change_set(self, template_url: str, creating: bool, stripe_on: bool) -> str:
        cfn = self.client("cloudformation")
        name = f"deploy-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(self._clock()))}"
        arn = cfn.create_change_set(
            StackName=self.stack,
            ChangeSetName=name,
            ChangeSetType="CREATE" if creating else "UPDATE",
            TemplateURL=template_url,
            Parameters=[{"ParameterKey": "Stripe", "ParameterValue": "on" if stripe_on else "off"}],
            Capabilities=CAPABILITIES,
            Tags=[{"Key": "app", "Value": APP_NAME}, {"Key": "stage", "Value": self.stage}],
        )["Id"]

        def created() -> dict[str, Any] | None:
            described = cfn.describe_change_set(ChangeSetName=arn, StackName=self.stack)
            return described if described["Status"] in ("CREATE_COMPLETE", "FAILED") else None

        try:
            described = eventually(created, self._change_set_timeout, name, interval=self._poll)
        except TimedOut:
            raise DeployError(
                f"CloudFormation was still creating change set {name} of stack {self.stack} after "
                f"{duration(self._change_set_timeout)} (--change-set-timeout), so nothing was "
                f"executed: see why in the CloudFormation console (stack {self.stack}, Change sets) "
                f"or with aws cloudformation describe-change-set --stack-name {self.stack} "
                f"--change-set-name {name}"
            ) from None
        if described["Status"] == "FAILED":
            # one that changes nothing fails too; neither is left behind
            reason = described.get("StatusReason", "")
            self._discard(arn, creating)
            if any(text in reason for text in NO_CHANGES):
                return ""
            raise DeployError(f"CloudFormation refused the change set (deleted; nothing was "
                              f"changed): {reason}")
        return arn

    def plan(self, change_set: str) -> list[PlannedChange] | None:
        """Print the change set as a plan; None when there is nothing to change."""
        if not change_set:
            return None
        cfn = self.client("cloudformation")
        changes: list[PlannedChange] = []
        token = None
        while True:
            page = cfn.describe_change_set(
                ChangeSetName=change_set, StackName=self.stack, **({"NextToken": token} if token else {})
            )
            for change in page.get("Changes", []):
                rc = change.get("ResourceChange", {})
                causes = sorted({
                    d.get("Target", {}).get("Name") or d.get("Target", {}).get("Attribute", "")
                    for d in rc.get("Details", []) if d.get("Target")
                } - {""})
                changes.append(PlannedChange(
                    action=rc.get("Action", "?"), logical_id=rc.get("LogicalResourceId", "?"),
                    resource_type=rc.get("ResourceType", "?"),
                    replacement=rc.get("Replacement", ""), causes=tuple(causes),
                ))
            token = page.get("NextToken")
            if not token:
                break
        if not changes:
            return None
        order = {"Remove": 0, "Modify": 1, "Add": 2}
        changes.sort(key=lambda c: (order.get(c.action, 3), c.logical_id))
        self._say("Plan:")
        for change in changes:
            self._say(change.line())
        self._say(plan_summary(changes))
        return changes

    def _discard(self, change_set: str, creating: bool) -> None:
        """Delete a change set not to be executed (and the empty stack of a CREATE one)."""
        from botocore.exceptions import ClientError

        cfn = self.client("cloudformation")
        try:
            cfn.delete_change_set(ChangeSetName=change_set, StackName=self.stack)
            if creating:  # a CREATE change set leaves an empty stack in REVIEW_IN_PROGRESS
                cfn.delete_stack(StackName=self.stack)
        except ClientError as error:
            self._say(f"  note: change set {change_set} could not be deleted "
                      f"({error.response['Error'].get('Code')}); delete it in the CloudFormation console")

    def execute(self, change_set: str) -> None:
        cfn = self.client("cloudformation")
        before = self.newest_event_id()
        cfn.execute_change_set(ChangeSetName=change_set, StackName=self.stack)
        self._say("Executing (stack events as they happen):")
        status = self.follow_events(before, "the change set's execution")
        if status not in DONE:
            failed = self.first_failure(before)
            where = (f"{failed['LogicalResourceId']} ({failed.get('ResourceType', '?')}): "
                     f"{failed.get('ResourceStatusReason', 'no reason given')}"
                     if failed else "no failed resource reported")
            raise DeployError(
                f"the deploy failed and CloudFormation rolled stack {self.stack} back ({status}). "
                f"First failure: {where}"
            )
        self._say(f"Stack {self.stack} is {status}.")

    # Events are told apart by id, not by time: the local clock and CloudFormation's may differ.
    def _event_pages(self) -> Iterable[dict[str, Any]]:
        """DescribeStackEvents' pages, newest event first."""
        cfn = self.client("cloudformation")
        return cfn.get_paginator("describe_stack_events").paginate(StackName=self._stack_id or self.stack)

    def newest_event_id(self) -> str | None:
        """The stack's latest event before an operation: what follows it is the operation's."""
        for page in self._event_pages():
            for event in page["StackEvents"]:
                return str(event["EventId"])
        return None

    def stack_events(self, after: str | None) -> list[dict[str, Any]]:
        """The events after the event ``after`` (all, if None), oldest first."""
        events: list[dict[str, Any]] = []
        for page in self._event_pages():
            for event in page["StackEvents"]:
                if after is not None and event["EventId"] == after:
                    return list(reversed(events))
                events.append(event)
        return list(reversed(events))

    def follow_events(
        self, after: str | None, waiting_for: str,
        final: Iterable[str] = DONE + ROLLED_BACK + ("DELETE_COMPLETE",),
    ) -> str:
        seen: set = set()
        self._following = True
        try:
            return self._follow(after, waiting_for, set(final), seen)
        finally:
            self._following = False

    def _follow(self, after: str | None, waiting_for: str, final: set[str], seen: set) -> str:
        status = "?"

        def ended() -> str | None:
            nonlocal status
            for event in self.stack_events(after):
                if event["EventId"] in seen:
                    continue
                seen.add(event["EventId"])
                reason = event.get("ResourceStatusReason")
                self._say(f"  {event['Timestamp']:%H:%M:%S}  {event['ResourceStatus']:<28} "
                          f"{event['LogicalResourceId']:<34} {event.get('ResourceType', '')}"
                          + (f"  {reason}" if reason else ""))
            stack = self.describe()
            status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
            return status if status in final else None

        try:
            return eventually(ended, self._stack_timeout, waiting_for, interval=self._poll)
        except TimedOut:
            raise DeployError(
                f"stopped waiting for {waiting_for} after {duration(self._stack_timeout)} "
                f"(--stack-timeout): stack {self.stack} is still {status}, and CloudFormation "
                f"carries on with it; follow it in the CloudFormation console (stack {self.stack}, "
                f"Events) or with aws cloudformation describe-stack-events --stack-name "
                f"{self.stack}, and run make deploy again once it has ended"
            ) from None

    def first_failure(self, after: str | None) -> dict[str, Any] | None:
        for event in self.stack_events(after):
            if event["ResourceStatus"].endswith("_FAILED") and event["LogicalResourceId"] != self.stack:
                return event
        return None

    def outputs(self) -> dict[str, Any]:
        stack = self.describe() or {}
        values = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        outputs: dict[str, Any] = {"stage": self.stage, "stackName": self.stack, "region": self.region}
        outputs.update({ours: values.get(key) for key, ours in OUTPUT_KEYS.items()})
        return outputs

    # --- delete ------------------------------------------------------------------------
    def delete(self, delete_data: bool = False, confirm: Callable[[str], bool] | None = None) -> None:
        self._say(f"Deleting stack {self.stack} in {self.region} (account {self.account}):")
        stack = self.describe()
        retained: dict[str, str] = {}
        if stack is None:
            self._say(f"  no stack {self.stack}")
        else:
            retained = self.retained_resources()
            cfn = self.client("cloudformation")
            before = self.newest_event_id()
            cfn.delete_stack(StackName=self.stack)
            status = self.follow_events(before, "the stack's deletion",
                                        final=("DELETE_COMPLETE", "DELETE_FAILED"))
            if status != "DELETE_COMPLETE":
                failed = self.first_failure(before)
                raise DeployError(
                    f"CloudFormation could not delete stack {self.stack}"
                    + (f": {failed['LogicalResourceId']}: {failed.get('ResourceStatusReason')}"
                       if failed else "")
                )
        self.outputs_path.unlink(missing_ok=True)
        data = self.leftover_data(retained)
        if not data:
            self._say(f"  nothing {'to delete' if delete_data else 'kept'}: stage {self.stage} has no "
                      f"{'other ' if self._secret_scheduled else ''}data left")
            return
        if not delete_data:
            for kind, name in data:
                self._say(f"  kept: {kind} {name} (--delete-data removes it)")
            return
        listing = ", ".join(f"{kind} {name}" for kind, name in data)
        if confirm is not None and not confirm(listing):
            raise DeployError("not confirmed: the data was kept")
        for kind, name in data:
            self.remove_data(kind, name)

    def retained_resources(self) -> dict[str, str]:
        """Physical ids of the stack's retained resources, read before it goes."""
        cfn = self.client("cloudformation")
        retained = stack_template.retained_names(self.stage)
        found = {}
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=self.stack):
            for resource in page["StackResourceSummaries"]:
                if resource["LogicalResourceId"] in retained:
                    found[resource["LogicalResourceId"]] = resource.get("PhysicalResourceId", "")
        return found

    def leftover_data(self, retained: dict[str, str]) -> list[tuple[str, str]]:
        """What the stage keeps after its stack is gone: what onboarding made for
        its tenants in SES (listed first: the table says what it is), its data
        and its secret."""
        names = stack_template.retained_names(self.stage)
        found: list[tuple[str, str]] = []
        ddb = self.client("dynamodb")
        table: str | None = retained.get("TenantTable") or names["TenantTable"]
        try:
            ddb.describe_table(TableName=table)
        except ddb.exceptions.ResourceNotFoundException:
            table = None
        ses_tenants, tenant_lists = self.tenant_places(table)
        self._tenant_places = {"SES tenants": ses_tenants, "SES contact lists": tenant_lists}
        for kind, places in self._tenant_places.items():
            if places:
                found.append((kind, f"({len(places)}, one a tenant: {places[0]}, …)"
                              if len(places) > 1 else f"({places[0]})"))
        if table:
            found.append(("DynamoDB table", table))
        for logical in ("UserPool", "AdminUserPool"):
            pool = retained.get(logical) or self.find_user_pool(names[logical])
            if pool:
                found.append(("Cognito user pool", pool))
        secrets = self.client("secretsmanager")
        try:
            secret = secrets.describe_secret(SecretId=stripe_secret_name(self.stage))
        except secrets.exceptions.ResourceNotFoundException:
            secret = None
        self._secret_scheduled = bool(secret and secret.get("DeletedDate"))
        if self._secret_scheduled:  # an earlier --delete-data: nothing to do again
            self._say(f"  already scheduled for deletion: Stripe secret {stripe_secret_name(self.stage)} "
                      f"(gone for good on {secret['DeletedDate']:%Y-%m-%d}; a deploy before then "
                      "restores it)")
        elif secret:
            found.append(("Stripe secret", stripe_secret_name(self.stage)))
        sesv2 = self.client("sesv2")
        shared = stack_template.shared_contact_list_name(self.stage)
        try:
            sesv2.get_contact_list(ContactListName=shared)
            found.append(("SES contact list", shared))
        except sesv2.exceptions.NotFoundException:
            pass
        return found

    def tenant_places(self, table: str | None) -> tuple[list[str], list[str]]:
        """The SES tenants and the SES contact lists (list-per-tenant) that
        onboarding made for this stage's tenants: those the table's records
        name, and the SES tenants tagged with this stage (whatever the table says)."""
        from chalicelib.ses_tenants import STAGE_TAG

        ses_tenants: set[str] = set()
        lists: set[str] = set()
        if table:
            for page in self.client("dynamodb").get_paginator("scan").paginate(
                    TableName=table, FilterExpression="sk = :tenant AND attribute_exists(#l)",
                    ExpressionAttributeNames={"#l": "list"},
                    ExpressionAttributeValues={":tenant": {"S": "tenant"}}):
                for item in page["Items"]:
                    if "sesTenant" in item:
                        ses_tenants.add(item["sesTenant"]["S"])
                    mode = item.get("listMode", {}).get("S")
                    if mode == "list-per-tenant" or (mode is None and "topic" not in item):
                        lists.add(item["list"]["S"])
        sesv2 = self.client("sesv2")
        for page in sesv2.get_paginator("list_tenants").paginate():
            for found in page.get("Tenants", []):
                if found["TenantName"] in ses_tenants or not found["TenantName"].startswith("tenant-"):
                    continue
                tags = sesv2.get_tenant(TenantName=found["TenantName"])["Tenant"].get("Tags", [])
                if {"Key": STAGE_TAG, "Value": self.stage} in tags:
                    ses_tenants.add(found["TenantName"])
        return sorted(ses_tenants), sorted(lists)

    def remove_data(self, kind: str, name: str) -> None:
        if kind in ("SES tenants", "SES contact lists"):
            self._remove_tenant_places(kind)
            return
        if kind == "DynamoDB table":
            ddb = self.client("dynamodb")
            ddb.update_table(TableName=name, DeletionProtectionEnabled=False)
            ddb.delete_table(TableName=name)
        elif kind == "Cognito user pool":
            set_user_pool_deletion_protection(self.client("cognito-idp"), name, active=False)
            self.client("cognito-idp").delete_user_pool(UserPoolId=name)
        elif kind == "Stripe secret":
            self.client("secretsmanager").delete_secret(SecretId=name, RecoveryWindowInDays=7)
        elif kind == "SES contact list":
            self.client("sesv2").delete_contact_list(ContactListName=name)
        self._say(f"  deleted: {kind} {name}"
                  + (" (recoverable for 7 days: a deploy in that time restores it)"
                     if kind == "Stripe secret" else ""))


    def _remove_tenant_places(self, kind: str) -> None:
        """Each SES tenant or list of the stage's tenants; one already gone counts as removed."""
        sesv2 = self.client("sesv2")
        removed = 0
        for name in self._tenant_places.get(kind, []):
            try:
                if kind == "SES tenants":
                    sesv2.delete_tenant(TenantName=name)
                else:
                    sesv2.delete_contact_list(ContactListName=name)
                removed += 1
            except sesv2.exceptions.NotFoundException:
                pass
        self._say(f"  deleted: {kind} of the stage's tenants ({removed})")


# UpdateUserPool sets every setting it is not given back to its default, so
# turning deletion protection off starts from DescribeUserPool's values.
_NOT_CARRIED_OVER = {"UserPoolId", "PoolName"}
_LEGACY_MESSAGES = ("EmailVerificationMessage", "EmailVerificationSubject", "SmsVerificationMessage")


def current_user_pool_settings(cognito: Any, pool: dict[str, Any]) -> dict[str, Any]:
    """The UpdateUserPool arguments that leave ``pool`` (DescribeUserPool's) as it is."""
    accepted = cognito.meta.service_model.operation_model("UpdateUserPool").input_shape.members
    settings = {key: value for key, value in pool.items()
                if key in accepted and key not in _NOT_CARRIED_OVER}
    if "VerificationMessageTemplate" in settings:
        for key in _LEGACY_MESSAGES:
            settings.pop(key, None)
    # deprecated; Cognito refuses it next to PasswordPolicy.TemporaryPasswordValidityDays
    (settings.get("AdminCreateUserConfig") or {}).pop("UnusedAccountValidityDays", None)
    return settings


def set_user_pool_deletion_protection(cognito: Any, pool_id: str, active: bool) -> None:
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    settings = current_user_pool_settings(cognito, pool)
    settings["DeletionProtection"] = "ACTIVE" if active else "INACTIVE"
    cognito.update_user_pool(UserPoolId=pool_id, **settings)


def read_stripe_key(from_stdin: bool) -> str | None:
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


def ask(listing: str, stage: str) -> bool:
    if not sys.stdin.isatty():
        raise DeployError("--delete-data deletes data: confirm at a terminal, or pass --yes")
    answer = input(f"This deletes for good: {listing}.\nType the stage name ({stage}) to confirm: ")
    return answer.strip() == stage


def print_outputs(outputs: dict[str, Any]) -> None:
    print(
        f"\nStage {outputs['stage']} (also in .chalice/outputs-{outputs['stage']}.json):\n"
        f"  API URL              {outputs.get('apiUrl')}\n"
        f"  user pool id         {outputs.get('userPoolId')}\n"
        f"  user pool client id  {outputs.get('userPoolClientId')}\n"
        f"  region               {outputs['region']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"deploy a stage of {APP_NAME} as one CloudFormation stack")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan, then delete the change set: nothing changes")
    parser.add_argument("--delete", action="store_true",
                        help="delete the stack; the table, user pool, Stripe secret and shared list are kept")
    parser.add_argument("--delete-data", action="store_true",
                        help="with --delete: also delete what was kept (asks first)")
    parser.add_argument("--yes", action="store_true", help="with --delete-data: do not ask")
    parser.add_argument("--stripe-key-stdin", action="store_true",
                        help=f"read the Stripe secret key from stdin (else {STRIPE_KEY_VARIABLE})")
    parser.add_argument("--replace-stripe-key", action="store_true",
                        help="allow replacing a stored Stripe key with a different one")
    parser.add_argument("--change-set-timeout", type=parse_duration, metavar="DURATION",
                        default=CHANGE_SET_TIMEOUT_SECONDS,
                        help=f"stop waiting for the change set after this long (seconds, or 90s, "
                             f"5m, 1h; default {duration(CHANGE_SET_TIMEOUT_SECONDS)})")
    parser.add_argument("--stack-timeout", type=parse_duration, metavar="DURATION",
                        default=STACK_TIMEOUT_SECONDS,
                        help=f"stop following a stack create, update or delete after this long "
                             f"(default {duration(STACK_TIMEOUT_SECONDS)}); CloudFormation goes on")
    args = parser.parse_args(argv)
    if args.delete_data and not args.delete:
        parser.error("--delete-data only goes with --delete")

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    try:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        deployer = Deployer(session, args.stage, change_set_timeout=args.change_set_timeout,
                            stack_timeout=args.stack_timeout)
        if args.delete:
            confirm = None if args.yes else (lambda listing: ask(listing, args.stage))
            deployer.delete(args.delete_data, confirm)
            return 0
        stripe_key = read_stripe_key(args.stripe_key_stdin)
        if stripe_key is None and os.environ.get("STRIPE_API_KEY"):
            print(f"note: STRIPE_API_KEY is the local stack's and is ignored here; give a "
                  f"stage's key as {STRIPE_KEY_VARIABLE} or with --stripe-key-stdin", file=sys.stderr)
        outputs = deployer.deploy(args.dry_run, stripe_key, args.replace_stripe_key)
    except ProfileNotFound as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    except (DeployError, stack_template.TemplateError) as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"deploy: AWS answered: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndeploy: interrupted; a running stack operation goes on in CloudFormation", file=sys.stderr)
        return 130
    if outputs:
        print_outputs(outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
