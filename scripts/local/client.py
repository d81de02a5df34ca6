"""Driving a running local stack from outside it: the admin CLI, the load run,
the bench and the end-to-end tests all reach it this way.

A boto3 session with fake credentials (all the local AWS checks), the mail
the local Cognito "sent" (the stack's outbox.jsonl), and an admin made as a
person would be made one.
"""
import json
from pathlib import Path
from typing import Any

from scripts.shared import eventually


def local_session(region: str) -> Any:
    """A boto3 session for a local stack: fake credentials, which is all it checks."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name=region)


def last_mail(state_dir: Path, to: str, field: str, seconds: float = 10) -> str:
    """The latest ``field`` (code, temporaryPassword) the local Cognito mailed ``to``."""
    outbox = state_dir / "outbox.jsonl"

    def latest() -> str | None:
        lines = outbox.read_text().splitlines() if outbox.exists() else []
        found = [m[field] for m in map(json.loads, lines) if m.get("to") == to and m.get(field)]
        return str(found[-1]) if found else None

    return eventually(latest, seconds, f"no {field} for {to} in {outbox}")


def new_local_admin(outputs: dict[str, Any], state_dir: Path, email: str,
                    password: str = "Admin-Pass-1234!") -> str:
    """An admin of a local stack, signed in: its ID token (load runs, tests).

    Made as an admin would be: AdminCreateUser, the temporary password read
    from the stack's outbox, a new password on first sign-in.
    """
    from scripts.admin.session import AdminSession

    cognito = local_session(outputs["region"]).client(
        "cognito-idp", endpoint_url=outputs["awsEndpoint"])
    cognito.admin_create_user(UserPoolId=outputs["adminUserPoolId"], Username=email,
                              UserAttributes=[{"Name": "email", "Value": email}])
    temporary = last_mail(state_dir, email, "temporaryPassword")
    replies = iter([temporary, password, password])
    session = AdminSession(cognito, outputs["adminUserPoolClientId"],
                           state_dir / f"admin-session-{email}.json")
    session.login(email, ask=lambda prompt: next(replies))
    return session.id_token()
