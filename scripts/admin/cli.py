"""The admin's command line: list, show, approve, reject and retry tenants by id.

    python -m scripts.admin list [--status onboarding] [--limit 50] [--all]
    python -m scripts.admin show TENANT_ID
    python -m scripts.admin approve TENANT_ID [--reason "..."]
    python -m scripts.admin reject TENANT_ID --reason "..."
    python -m scripts.admin retry TENANT_ID       # a failed or timed-out onboarding, again
    python -m scripts.admin offboard TENANT_ID --reason "..."   # the tenant leaves
    python -m scripts.admin resume TENANT_ID      # a confirmed user whose trigger failed
    python -m scripts.admin reconcile             # the scheduled sweep, now

Every string a tenant supplied is printed with control characters made
visible (\x1b, \n, \u202e...): a name cannot rewrite what the admin sees.

    python -m scripts.admin add-admin EMAIL          # with AWS credentials (locally: none)
    python -m scripts.admin remove-admin EMAIL       # disabled, and no more notifications
    python -m scripts.admin login [EMAIL]            # password asked, never on argv
    python -m scripts.admin token                    # the ID token, for curl

Against the local stack by default (.local/stack.json), or a deployed stage
with --stage STAGE (.chalice/outputs-STAGE.json). The admin routes take an
admin's Cognito ID token: sign in once with `login`; every command sends it,
refreshed when it is about to expire. `make admin ARGS="list"` runs it too.
"""
import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scripts.admin.session import (
    SIGN_IN_AGAIN,
    AdminSession,
    SignInError,
    admin_password_policy,
    token_file,
)
from scripts.local.client import local_session
from scripts.shared import PROJECT_DIR

if TYPE_CHECKING:
    from scripts.admin.notifications import AdminNotifications


class AdminError(RuntimeError):
    """Printed as is, without a traceback."""


class AdminApi:
    def __init__(self, base_url: str, id_token: Callable[[], str]):
        """``id_token``: the signed-in admin's, sent as ``Authorization`` with every call."""
        self._base = base_url.rstrip("/")
        self._id_token = id_token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self._base + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        headers["Authorization"] = self._id_token()
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            if error.code == 401:  # the authorizer refused the token: not a fault of the call
                raise AdminError(SIGN_IN_AGAIN) from None
            try:
                message = json.loads(error.read()).get("Message") or error.reason
            except ValueError:
                message = error.reason
            raise AdminError(f"{error.code} {error.reason}: {message}") from None
        except urllib.error.URLError as error:
            raise AdminError(f"cannot reach {self._base}: {error.reason}") from None

    def list(self, status: str, limit: int, everything: bool) -> list[dict[str, Any]]:
        tenants: list[dict[str, Any]] = []
        token = None
        while True:
            query = {"status": status, "limit": str(limit), **({"nextToken": token} if token else {})}
            page = self.call("GET", "/tenants?" + urllib.parse.urlencode(query))
            tenants += page["tenants"]
            token = page.get("nextToken")
            if not token or not everything:
                if token:
                    print(f"(more: rerun with --all, or --limit above {limit})", file=sys.stderr)
                return tenants

    def show(self, tenant_id: str) -> dict[str, Any]:
        return self.call("GET", f"/tenants/{urllib.parse.quote(tenant_id)}")

    def decide(self, tenant_id: str, status: str, reason: str | None) -> dict[str, Any]:
        body = {"status": status, **({"reason": reason} if reason else {})}
        return self.call("POST", f"/tenants/{urllib.parse.quote(tenant_id)}/decision", body)

    def retry(self, tenant_id: str) -> dict[str, Any]:
        return self.call("POST", f"/tenants/{urllib.parse.quote(tenant_id)}/retry", {})

    def offboard(self, tenant_id: str, reason: str) -> dict[str, Any]:
        return self.call("POST", f"/tenants/{urllib.parse.quote(tenant_id)}/offboarding",
                         {"reason": reason})


def target_outputs(stage: str | None, state_dir: Path) -> dict[str, Any]:
    """What the target publishes: .chalice/outputs-STAGE.json or the local stack.json."""
    if stage:
        outputs = PROJECT_DIR / ".chalice" / f"outputs-{stage}.json"
        if not outputs.exists():
            raise AdminError(f"{outputs} not found: deploy the stage first (make deploy STAGE={stage})")
        return json.loads(outputs.read_text())
    stack = state_dir / "stack.json"
    if not stack.exists():
        raise AdminError(f"no local stack ({stack} missing): start one with make run, or pass --stage")
    return json.loads(stack.read_text())


def api_for(stage: str | None, state_dir: Path, profile: str | None) -> AdminApi:
    """The API, as the admin signed in with make admin ARGS="login"."""
    values = target_outputs(stage, state_dir)
    if not values.get("apiUrl"):
        raise AdminError(f"the {stage or 'local'} stage has no apiUrl")
    session = admin_session(stage, state_dir, profile, values)

    def id_token() -> str:
        try:
            return session.id_token()
        except SignInError as error:
            raise AdminError(str(error)) from None

    return AdminApi(values["apiUrl"], id_token)


def admin_session(stage: str | None, state_dir: Path, profile: str | None,
                  values: dict[str, Any]) -> AdminSession:
    if not values.get("adminUserPoolClientId"):
        raise AdminError(f"the {stage or 'local'} stage has no admin user pool; deploy it again")
    if stage:  # signing in needs no AWS credentials: a public client, like the console's
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        cognito = boto3.client("cognito-idp", region_name=values["region"],
                               config=Config(signature_version=UNSIGNED))
    else:
        session, endpoint = aws_session(stage, profile, values)
        cognito = session.client("cognito-idp", endpoint_url=endpoint)
    return AdminSession(cognito, values["adminUserPoolClientId"], token_file(stage, state_dir),
                        password_rule=admin_password_policy())


def add_admin(stage: str | None, state_dir: Path, profile: str | None, email: str) -> str:
    """An admin (with AWS credentials), subscribed to the admin notifications.

    A new one: Cognito mails its temporary password (locally: to the outbox);
    first sign-in sets its own. One removed: enabled again, same password. One
    there already: left as it is. Then SNS mails the link that confirms the
    subscription, unless the address is subscribed already. Says which, in a
    sentence."""
    from botocore.exceptions import BotoCoreError, ClientError

    cognito, pool, notifications = _admin_pool_and_topic(stage, state_dir, profile)
    try:
        try:
            cognito.admin_create_user(
                UserPoolId=pool, Username=email, DesiredDeliveryMediums=["EMAIL"],
                UserAttributes=[{"Name": "email", "Value": email},
                                {"Name": "email_verified", "Value": "true"}])
            where = "the outbox (.local/outbox.jsonl)" if not stage else "their email"
            said = f"{email} is an admin; their temporary password is in {where}."
        except cognito.exceptions.UsernameExistsException:
            if cognito.admin_get_user(UserPoolId=pool, Username=email).get("Enabled", True):
                said = f"{email} is an admin already."
            else:
                cognito.admin_enable_user(UserPoolId=pool, Username=email)
                said = f"{email} is an admin again (enabled), with the password they had."
    except (ClientError, BotoCoreError) as error:
        raise AdminError(f"Cognito refused to add {email}: {_aws_message(error)}") from None
    try:
        asked = notifications.subscribe(email)
    except (ClientError, BotoCoreError) as error:
        raise AdminError(f"{said} But SNS refused to subscribe them to the admin notifications "
                         f"({_aws_message(error)}); run add-admin again once that is fixed") from None
    return said + (" SNS mailed them a link: once they open it, they receive the admin "
                   "notifications." if asked else " They receive the admin notifications already.")


def remove_admin(stage: str | None, state_dir: Path, profile: str | None, email: str) -> str:
    """An admin no more: disabled (signed out everywhere) and unsubscribed. Idempotent."""
    from botocore.exceptions import BotoCoreError, ClientError

    cognito, pool, notifications = _admin_pool_and_topic(stage, state_dir, profile)
    try:
        cognito.admin_disable_user(UserPoolId=pool, Username=email)
        cognito.admin_user_global_sign_out(UserPoolId=pool, Username=email)
        said = f"{email} is disabled and signed out everywhere."
    except cognito.exceptions.UserNotFoundException:
        said = f"{email} is not an admin of the {stage or 'local'} stage."
    except (ClientError, BotoCoreError) as error:
        raise AdminError(f"Cognito refused to disable {email}: {_aws_message(error)}") from None
    try:
        gone = notifications.unsubscribe(email)
    except (ClientError, BotoCoreError) as error:
        raise AdminError(f"{said} But SNS refused to unsubscribe them from the admin "
                         f"notifications ({_aws_message(error)}); run remove-admin again once "
                         "that is fixed") from None
    said += (f" Removed {gone.removed} subscription(s) to the admin notifications."
             if gone.removed else " They had no confirmed subscription to the admin notifications.")
    if gone.pending:
        said += (" A confirmation link SNS mailed them is still open: SNS cannot withdraw it, and "
                 "it lapses after 3 days; should they open it meanwhile, run remove-admin again.")
    return said


def _admin_pool_and_topic(stage: str | None, state_dir: Path, profile: str | None,
                          ) -> tuple[Any, str, "AdminNotifications"]:
    """Cognito and the admin pool's id, and the admin notifications topic, with
    your credentials (locally: the stack's)."""
    from scripts.admin.notifications import AdminNotifications

    values = target_outputs(stage, state_dir)
    topic = values.get("adminNotificationsTopicArn")
    if not topic:
        raise AdminError(f"the {stage or 'local'} stage has no admin notifications topic: "
                         + (f"deploy it again (make deploy STAGE={stage})" if stage
                            else "restart the local stack (make run)"))
    session, endpoint = aws_session(stage, profile, values)
    return (session.client("cognito-idp", endpoint_url=endpoint), values["adminUserPoolId"],
            AdminNotifications(session.client("sns", endpoint_url=endpoint), topic))


def _aws_message(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        found = response.get("Error", {})
        return f"{found.get('Code')}: {found.get('Message')}"
    return str(error)


def aws_session(stage: str | None, profile: str | None, values: dict[str, Any]):
    """Your credentials for a deployed stage; the local stack's for it. (session, endpoint)."""
    import boto3

    if stage:
        return boto3.session.Session(profile_name=profile, region_name=values["region"]), None
    return local_session(values["region"]), values["awsEndpoint"]


def resume(stage: str | None, state_dir: Path, profile: str | None, tenant_id: str) -> str:
    """Start onboarding for a confirmed user whose post-confirmation trigger failed.

    Cognito does not retry a trigger that answered an error, and a confirmed
    user cannot confirm again. This rebuilds the event Cognito would have sent
    from the user as Cognito holds it and starts the execution the trigger
    would have, only if there is none: an onboarding that ran and ended is
    not resumed but retried (AdminError says so). Uses your AWS credentials
    directly, not the API.
    """
    from chalicelib.errors import InvalidSignupEvent
    from chalicelib.signup import CONFIRM_SIGN_UP, tenant_from_confirmation
    from chalicelib.workflow import OnboardingWorkflow, execution_arn

    values = target_outputs(stage, state_dir)
    session, endpoint = aws_session(stage, profile, values)
    cognito = session.client("cognito-idp", endpoint_url=endpoint)
    try:
        user = cognito.admin_get_user(UserPoolId=values["userPoolId"], Username=tenant_id)
    except cognito.exceptions.UserNotFoundException:
        raise AdminError(f"no user {tenant_id} in user pool {values['userPoolId']}") from None
    if user.get("UserStatus") != "CONFIRMED":
        raise AdminError(f"user {tenant_id} is {user.get('UserStatus')}, not CONFIRMED: "
                         "onboarding starts when they confirm")
    attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
    event = {"triggerSource": CONFIRM_SIGN_UP, "userName": user["Username"],
             "request": {"userAttributes": attributes}}
    try:
        tenant = tenant_from_confirmation(event)
    except InvalidSignupEvent as error:
        raise AdminError(str(error)) from None
    if tenant is None:  # not a sign-up confirmation: cannot happen with the event above
        raise AdminError(f"user {tenant_id} is not a confirmed sign-up")
    workflow = OnboardingWorkflow(session.client("stepfunctions", endpoint_url=endpoint),
                                  values["stateMachineArn"])
    status = workflow.execution_status(tenant.tenant_id)
    arn = execution_arn(values["stateMachineArn"], tenant.tenant_id)
    if status is None:
        return workflow.start(tenant)
    if status == "RUNNING":
        raise AdminError(f"onboarding of {tenant.tenant_id} already runs as {arn}; nothing to resume")
    raise AdminError(
        f"onboarding of {tenant.tenant_id} already ran and ended {status} ({arn}); "
        f"see make admin ARGS=\"show {tenant.tenant_id}\", and retry it with "
        f"make admin ARGS=\"retry {tenant.tenant_id}\" if it failed or timed out"
    )


def reconcile(stage: str | None, state_dir: Path, profile: str | None) -> dict[str, int]:
    """Run the scheduled sweep now (lambda:InvokeFunction with your credentials)."""
    values = target_outputs(stage, state_dir)
    if not values.get("reconcileFunction"):
        raise AdminError(f"the {stage or 'local'} stage names no reconcile function; deploy it again")
    from scripts.local.lambdas import scheduled_event  # the shape EventBridge sends

    session, endpoint = aws_session(stage, profile, values)
    event = scheduled_event(values["region"], values.get("account", "123456789012"))
    answer = session.client("lambda", endpoint_url=endpoint).invoke(
        FunctionName=values["reconcileFunction"], Payload=json.dumps(event).encode())
    body = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        raise AdminError(f"the sweep failed: {body.get('errorType')}: {body.get('errorMessage')}")
    return body


# Control characters (C0, DEL, C1) and the bidirectional controls that reorder text.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(value: Any) -> str:
    """A stored string as text an admin can trust: every control character escaped."""
    def escape(match: "re.Match[str]") -> str:
        char = match.group(0)
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
            char, f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return _INVISIBLE.sub(escape, str(value))


def table(rows: list[dict[str, Any]], columns: list[tuple]) -> str:
    """A plain text table: columns are (heading, key)."""
    cells = [[heading for heading, _ in columns]]
    cells += [[visible(row.get(key) or "-") for _, key in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


LIST_COLUMNS = [("TENANT ID", "tenantId"), ("NAME", "name"), ("EMAIL", "email"),
                ("STATUS", "status"), ("CREATED", "createdAt"), ("DECIDE BY", "decideBy")]


def describe(tenant: dict[str, Any]) -> str:
    decision = tenant.get("decision") or {}
    fields = [
        ("tenant id", tenant.get("tenantId")), ("name", tenant.get("name")),
        ("email", tenant.get("email")), ("status", tenant.get("status")),
        ("created", tenant.get("createdAt")), ("updated", tenant.get("updatedAt")),
        ("awaiting since", tenant.get("awaitingDecisionSince")),
        ("decide by", tenant.get("decideBy")),
        ("decision", decision.get("status")), ("decided by", decision.get("decidedBy")),
        ("decided at", decision.get("decidedAt")), ("reason", decision.get("reason")),
        ("failure reason", tenant.get("failureReason")),
        ("stripe customer", tenant.get("stripeCustomerId")),
        ("contact list", tenant.get("list")), ("topic", tenant.get("topic")),
        ("subscribers", tenant.get("subscribers")),
        ("attempts", tenant.get("attempts")),
        ("offboarded at", tenant.get("offboardedAt")), ("offboarded by", tenant.get("offboardedBy")),
        ("offboard reason", tenant.get("offboardReason")),
        ("offboarding failed", (tenant.get("offboardingFailure") or {}).get("reason")),
        ("release failed", (tenant.get("releaseFailure") or {}).get("reason")),
    ]
    fields += [(f"released {what}", " ".join(f"{k}={v}" for k, v in sorted(details.items())))
               for what, details in sorted((tenant.get("released") or {}).items())]
    fields += [(f"retry {r.get('attempt')}", f"by {r.get('retriedBy')} at {r.get('retriedAt')} "
                f"(was {r.get('previousStatus')}"
                + (f": {r['previousReason']}" if r.get("previousReason") else "") + ")")
               for r in tenant.get("retries") or []]
    shown = [(k, v) for k, v in fields if v is not None]
    width = max(len(k) for k, _ in shown)
    return "\n".join(f"{k:<{width}}  {visible(v)}" for k, v in shown)


MAKE_ADMIN = "make admin"


class MakeAdminParser(argparse.ArgumentParser):
    """Usage as it is typed, ``make admin ARGS="list [--all]"``, not as Python
    runs it (``__main__.py``). Its subcommands' parsers are of this class too."""

    def format_usage(self) -> str:
        return self._quoted(super().format_usage())

    def format_help(self) -> str:
        return self._quoted(super().format_help())

    @staticmethod
    def _quoted(text: str) -> str:
        """The usage at the head of ``text``, its arguments inside ARGS="…"."""
        start = f"usage: {MAKE_ADMIN} "
        if not text.startswith(start):
            return text
        end = text.find("\n\n")
        end = len(text.rstrip("\n")) if end < 0 else end
        usage = text[len(start):end].replace("\n", "\n" + " " * len('ARGS="'))
        return f'usage: {MAKE_ADMIN} ARGS="{usage}"{text[end:]}'


def main(argv: list[str] | None = None) -> int:
    parser = MakeAdminParser(prog=MAKE_ADMIN, description="decide tenant onboardings")
    parser.add_argument("--stage", help="a deployed stage (default: the local stack)")
    parser.add_argument("--profile", help="AWS profile for a deployed stage")
    parser.add_argument("--state-dir", default=os.environ.get("LOCAL_STATE_DIR", ".local"),
                        help="the local stack's state directory")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="tenants in a status")
    listing.add_argument("--status", default="onboarding",
                         choices=["onboarding", "active", "rejected", "failed", "timeout",
                                  "offboarding", "offboarded"])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--all", action="store_true", help="follow every page")
    commands.add_parser("show", help="one tenant").add_argument("tenant_id")
    approve = commands.add_parser("approve", help="approve a pending tenant")
    approve.add_argument("tenant_id")
    approve.add_argument("--reason")
    reject = commands.add_parser("reject", help="reject a pending tenant (a reason is required)")
    reject.add_argument("tenant_id")
    reject.add_argument("--reason", required=True)
    commands.add_parser(
        "retry", help="onboard a failed or timed-out tenant again (a new attempt)"
    ).add_argument("tenant_id")
    offboard = commands.add_parser(
        "offboard", help="offboard a tenant: disable its login, delete its Stripe customer, "
                         "release its SES place, keep its record (a reason is required)")
    offboard.add_argument("tenant_id")
    offboard.add_argument("--reason", required=True)
    commands.add_parser(
        "resume", help="start onboarding for a confirmed user whose trigger failed"
    ).add_argument("tenant_id")
    commands.add_parser("reconcile", help="run the scheduled sweep now: stuck tenants, "
                        "unsent outcomes, reminders")
    commands.add_parser("add-admin", help="make someone an admin, and subscribe them to the "
                        "admin notifications (uses AWS credentials)").add_argument("email")
    commands.add_parser("remove-admin", help="disable an admin, and unsubscribe them from the "
                        "admin notifications (uses AWS credentials)").add_argument("email")
    commands.add_parser("login", help="sign in as an admin (password asked)").add_argument(
        "email", nargs="?")
    commands.add_parser("token", help="print your ID token (signed in), e.g. for curl")
    args = parser.parse_args(argv)

    try:
        if args.command == "resume":
            arn = resume(args.stage, Path(args.state_dir), args.profile, args.tenant_id)
            print(f"Onboarding of {args.tenant_id} started as {arn}")
            return 0
        if args.command == "add-admin":
            print(add_admin(args.stage, Path(args.state_dir), args.profile, args.email)
                  + " They sign in with make admin ARGS=\"login\" or on /admin.")
            return 0
        if args.command == "remove-admin":
            print(remove_admin(args.stage, Path(args.state_dir), args.profile, args.email))
            return 0
        if args.command in ("login", "token"):
            values = target_outputs(args.stage, Path(args.state_dir))
            session = admin_session(args.stage, Path(args.state_dir), args.profile, values)
            try:
                if args.command == "token":
                    print(session.id_token())
                    return 0
                email = args.email or input("Email: ").strip()
                session.login(email)
            except SignInError as error:
                raise AdminError(str(error)) from None
            print(f"Signed in as {email}.")
            return 0
        if args.command == "reconcile":
            counts = reconcile(args.stage, Path(args.state_dir), args.profile)
            print("Reconciled: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                                    or "nothing to do"))
            return 0
        api = api_for(args.stage, Path(args.state_dir), args.profile)
        if args.command == "list":
            tenants = api.list(args.status, args.limit, args.all)
            print(table(tenants, LIST_COLUMNS) if tenants else f"No tenants in status {args.status}.")
        elif args.command == "show":
            print(describe(api.show(args.tenant_id)))
        elif args.command == "offboard":
            answer = api.offboard(args.tenant_id, args.reason)
            print(f"Offboarding {args.tenant_id} (status {answer['status']}); "
                  f"make admin ARGS=\"show {args.tenant_id}\" follows it")
        elif args.command == "retry":
            answer = api.retry(args.tenant_id)
            print(f"Retrying onboarding of {args.tenant_id} as attempt {answer['attempt']} "
                  f"(status {answer['status']})")
        else:
            status = "approved" if args.command == "approve" else "rejected"
            answer = api.decide(args.tenant_id, status, args.reason)
            print(f"{answer['message']}: {args.tenant_id} (by {answer['decidedBy']} "
                  f"at {answer['decidedAt']})")
    except AdminError as error:
        print(f"admin: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
