"""The admin's sign-in: a user of the stage's admin user pool, as the console is.

`make admin ARGS="login"` asks for the password (never on the command line;
from stdin when it is not a terminal), answers Cognito's first-time
new-password challenge, and keeps the tokens in a file only its user can
read: in the local stack's state directory, or ~/.cache/tenant-onboarding/
for a deployed stage. Each request sends the ID token, refreshed with the
refresh token once it is about to expire.
"""
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REFRESH_MARGIN_SECONDS = 60
ADMIN_POOL = "AdminUserPool"  # its logical id in template.json


# A saved sign-in the stage no longer takes: another user pool (each local
# stack makes its own), or a token the API refused (401).
SIGN_IN_AGAIN = ("your saved sign-in is not valid for this stage (it may be from an earlier "
                 "local stack): sign in again with make admin ARGS=\"login\"")


class SignInError(RuntimeError):
    """Printed as is by the CLI."""


def token_file(stage: str | None, state_dir: Path) -> Path:
    if not stage:
        return state_dir / "admin-session.json"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tenant-onboarding" / f"admin-session-{stage}.json"


def ask_secret(prompt: str) -> str:
    """A terminal prompt without echo; a line of stdin otherwise (scripts, tests)."""
    value = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
    value = value.rstrip("\n")
    if not value:
        raise SignInError("no password given")
    return value


def password_policy(policy: dict[str, Any]) -> str:
    """A Cognito PasswordPolicy in words, as the console says it (web/build.mjs):
    "at least 12 characters, with upper- and lower-case letters, a digit and a symbol"."""
    upper, lower = policy.get("RequireUppercase"), policy.get("RequireLowercase")
    kinds = []
    if upper and lower:
        kinds.append("upper- and lower-case letters")
    elif upper:
        kinds.append("an upper-case letter")
    elif lower:
        kinds.append("a lower-case letter")
    if policy.get("RequireNumbers"):
        kinds.append("a digit")
    if policy.get("RequireSymbols"):
        kinds.append("a symbol")
    listed = ", ".join(kinds[:-1]) + " and " + kinds[-1] if len(kinds) > 1 else "".join(kinds)
    return f"at least {policy.get('MinimumLength', 8)} characters" + (f", with {listed}" if listed else "")


def admin_password_policy() -> str:
    """The admin pool's policy, in words, from template.json (what every stage deploys)."""
    from scripts.deploy.template import load_template

    pool = load_template()["Resources"][ADMIN_POOL]["Properties"]
    return password_policy(pool["Policies"]["PasswordPolicy"])


class AdminSession:
    def __init__(self, cognito: Any, client_id: str, path: Path,
                 clock: Callable[[], float] = time.time, password_rule: str = "") -> None:
        """``password_rule``: the pool's password policy in words (admin_password_policy)."""
        self._cognito = cognito
        self._client_id = client_id
        self._path = path
        self._clock = clock
        self._password_rule = password_rule

    def login(self, email: str, ask: Callable[[str], str] = ask_secret) -> str:
        """Sign in (setting a new password the first time); the admin's email."""
        try:
            answer = self._cognito.initiate_auth(
                ClientId=self._client_id, AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": ask("Password: ")})
            if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
                new = ask("New password (first sign-in): ")
                if ask("New password again: ") != new:
                    raise SignInError("the two new passwords differ; nothing was changed")
                answer = self._cognito.respond_to_auth_challenge(
                    ClientId=self._client_id, ChallengeName="NEW_PASSWORD_REQUIRED",
                    Session=answer["Session"],
                    ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": new})
        except self._cognito.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidPasswordException":
                rule = f"choose one of {self._password_rule}" if self._password_rule else (
                    "choose a longer one, with more kinds of characters")
                raise SignInError(
                    f"Cognito refused the new password: {rule}. Nothing was changed: sign in "
                    "again with the temporary password") from None
            raise SignInError(_sentence(error)) from None
        if "AuthenticationResult" not in answer:
            raise SignInError(f"Cognito asks for {answer.get('ChallengeName')}, which this CLI "
                              "does not answer; sign in on the admin console")
        self._save(answer["AuthenticationResult"], email)
        return email

    def id_token(self) -> str:
        """A valid ID token: the cached one, or a refreshed one."""
        saved = self._load()
        if saved["expiresAt"] - REFRESH_MARGIN_SECONDS > self._clock():
            return saved["idToken"]
        try:
            answer = self._cognito.initiate_auth(
                ClientId=self._client_id, AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": saved["refreshToken"]})
        except self._cognito.exceptions.ClientError as error:
            raise SignInError(f"your sign-in expired ({_sentence(error)}): make admin "
                              "ARGS=\"login\" again") from None
        result = {**answer["AuthenticationResult"], "RefreshToken": saved["refreshToken"]}
        return self._save(result, saved["email"])["idToken"]

    def _save(self, result: dict[str, Any], email: str) -> dict[str, Any]:
        saved = {"email": email, "clientId": self._client_id, "idToken": result["IdToken"],
                 "refreshToken": result.get("RefreshToken"),
                 "expiresAt": self._clock() + int(result.get("ExpiresIn", 3600))}
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(saved, out)
        os.chmod(self._path, 0o600)  # also when the file was there before
        return saved

    def _load(self) -> dict[str, Any]:
        try:
            saved: dict[str, Any] = json.loads(self._path.read_text())
        except (OSError, ValueError):
            raise SignInError("not signed in: make admin ARGS=\"login\" first") from None
        if saved.get("clientId", self._client_id) != self._client_id:
            raise SignInError(SIGN_IN_AGAIN)
        return saved


def _sentence(error: Any) -> str:
    info = error.response.get("Error", {})
    return f"{info.get('Code')}: {info.get('Message')}"
