"""The end-to-end tier's local stack: ``make run``'s entry point in a child
process (scripts/local/child.py), driven as a user would drive it: sign up
and confirm through the local Cognito API, find the task token in the
execution history, call the API over HTTP, read the record and the events."""
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chalicelib.workflow import execution_arn
from scripts.local.child import ChildStack
from scripts.local.client import last_mail, local_session, new_local_admin
from tests.support import PROJECT_DIR, eventually
from tests.support.stage import wait_for_event

PASSWORD = "Correct-Horse-9"
ADMIN_EMAIL = "e2e-admin@example.com"


class RunningStack(ChildStack):
    def __init__(self, state_dir: Path, **settings: str) -> None:
        super().__init__(state_dir, ready_seconds=60, **settings)
        self.start()
        session = local_session(self.outputs["region"])
        endpoint = self.outputs["awsEndpoint"]
        self.cognito = session.client("cognito-idp", endpoint_url=endpoint)
        self.sfn = session.client("stepfunctions", endpoint_url=endpoint)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint)
        self.sesv2 = session.client("sesv2", endpoint_url=endpoint)
        self._admin_token: str | None = None

    # --- what a user does --------------------------------------------------------
    def sign_up_and_confirm(self, email: str, name: str) -> str:
        client_id = self.outputs["userPoolClientId"]
        sub: str = self.cognito.sign_up(
            ClientId=client_id,
            Username=email,
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": name}],
        )["UserSub"]
        code = last_mail(self.state_dir, email, "code")
        self.cognito.confirm_sign_up(ClientId=client_id, Username=email, ConfirmationCode=code)
        return sub

    @property
    def admin_token(self) -> str:
        """An admin's ID token, for the admin routes (made once a stack)."""
        if not self._admin_token:
            self._admin_token = new_local_admin(self.outputs, self.state_dir, ADMIN_EMAIL)
        return self._admin_token

    def run_admin(self, *args: str, stdin: str = "") -> "subprocess.CompletedProcess[str]":
        """The admin CLI against this stack, signed in as the e2e admin."""
        assert self.admin_token  # made, and its session saved where the CLI finds it
        session = self.state_dir / f"admin-session-{ADMIN_EMAIL}.json"
        (self.state_dir / "admin-session.json").write_bytes(session.read_bytes())
        return subprocess.run(
            [sys.executable, "-m", "scripts.admin", "--state-dir", str(self.state_dir), *args],
            cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, input=stdin,
        )

    def task_token(self, tenant_id: str, seconds: float = 20) -> str:
        execution = self.execution_arn(tenant_id)

        def token() -> str | None:
            try:
                history = self.sfn.get_execution_history(executionArn=execution)["events"]
            except self.sfn.exceptions.ExecutionDoesNotExist:
                return None
            for event in history:
                if event["type"] == "TaskScheduled":
                    details = json.loads(event["taskScheduledEventDetails"]["parameters"])
                    return str(details["Payload"]["taskToken"])
            return None

        return eventually(token, seconds, lambda: f"no task token for {tenant_id}:\n{self.output()}",
                          interval=0.1)

    def finalize(self, body: dict[str, Any]) -> tuple[int, Any]:
        return call(self, "POST", "/tenant/finalize", self.admin_token, body)

    def record(self, tenant_id: str, status: str, seconds: float = 15) -> dict[str, Any]:
        def in_status() -> dict[str, Any] | None:
            item: dict[str, Any] = self.ddb.get_item(
                TableName=self.outputs["tableName"],
                Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}},
            ).get("Item", {})
            return item if item.get("status", {}).get("S") == status else None

        return eventually(in_status, seconds,
                          lambda: f"record never reached {status}\n{self.output()}", interval=0.1)

    def events(self) -> list[dict[str, Any]]:
        path = self.state_dir / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def wait_for_event(self, tenant_id: str, detail_type: str, seconds: float = 15) -> list[str]:
        return wait_for_event(self.events, tenant_id, detail_type, seconds)

    def execution_arn(self, name: str) -> str:
        """The onboarding execution named ``name`` (the tenant id, or <id>-attempt-N)."""
        return execution_arn(self.outputs["stateMachineArn"], name)


def call(stack: ChildStack, method: str, path: str, token: str | None = None,
         body: Any = None) -> tuple[int, Any]:
    """One request to the stack's API: (status, JSON answer)."""
    request = urllib.request.Request(
        stack.outputs["apiUrl"] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": token} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None
