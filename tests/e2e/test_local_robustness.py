"""The local stack survives what a new user does to it, and its Cognito
refuses what AWS's refuses: a killed stack takes localstripe with it, a
killed `make run` takes the stack, a stopped one can start again at once on
the same ports, a bad port or a port in use is one clear line (naming the
process that holds it), and a second confirmation, an over-long attribute or an email
in another case are answered as Cognito answers them."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest

from scripts.local.aws import AwsExtensions
from scripts.local.child import child_stack_environment, read_stack_json
from scripts.local.cognito import LocalCognito
from scripts.local.stack import _port_free
from tests.support import PROJECT_DIR, eventually
from tests.support.stacks import PASSWORD, RunningStack

TRIGGER = "arn:aws:lambda:us-east-1:123456789012:function:tenant-onboarding-test-post_confirmation"
ON_LINUX = Path("/proc/self/stat").exists()


# --- 1. localstripe dies with the stack -----------------------------------------
def _stat(pid: int):
    """(state, parent pid) of a process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie no longer runs


def _localstripe_children(parent: int) -> list:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        stat = _stat(int(proc.name))
        try:
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if stat and stat[1] == parent and b"scripts.local.stripe_server" in command:
            found.append(int(proc.name))
    return found


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.e2e
@pytest.mark.skipif(not ON_LINUX, reason="finds processes in /proc")
def test_given_a_stack_with_stripe_when_it_is_killed_then_localstripe_ends_too(tmp_path):
    stack = RunningStack(tmp_path / "state", STRIPE_API_KEY="sk_test_local", LOCAL_STRIPE_PORT="0")
    localstripe = _localstripe_children(stack.process.pid)
    try:
        port = urlparse(stack.outputs["stripeApiBase"]).port
        assert len(localstripe) == 1 and _listening(port)

        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait(timeout=10)

        eventually(lambda: not _alive(localstripe[0]), 5, "localstripe outlived the stack",
                   interval=0.1)
        assert not _listening(port)
    finally:
        stack.stop()
        for pid in localstripe:  # an orphan, if the fix ever regresses
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.e2e
@pytest.mark.skipif(not ON_LINUX, reason="finds processes in /proc")
def test_given_make_run_when_it_is_killed_then_the_stack_stops_and_no_port_stays_held(tmp_path):
    """`kill -9` of make: its child, the stack, stops as on Ctrl-C, and localstripe with it."""
    state_dir = tmp_path / "state"
    with open(tmp_path / "state.log", "w") as log:
        make = subprocess.Popen(  # make run's shape: a parent that waits for the stack
            [sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])",
             sys.executable, "-m", "scripts.local.stack", "--state-dir", str(state_dir)],
            cwd=PROJECT_DIR, env=child_stack_environment(STRIPE_API_KEY="sk_test_local"),
            stdout=log, stderr=subprocess.STDOUT)
    stack = localstripe = None
    try:
        outputs = eventually(lambda: read_stack_json(state_dir), 60,
                             lambda: f"the stack was not ready:\n{(tmp_path / 'state.log').read_text()}",
                             interval=0.1)
        stack = int((state_dir / "stack.lock").read_text())
        [localstripe] = _localstripe_children(stack)
        ports = [urlparse(outputs[key]).port for key in ("awsEndpoint", "apiUrl", "stripeApiBase")]

        make.send_signal(signal.SIGKILL)
        make.wait(timeout=10)

        eventually(lambda: not _alive(stack) and not _alive(localstripe), 20,
                   lambda: f"the stack outlived make:\n{(tmp_path / 'state.log').read_text()}",
                   interval=0.1)
        assert [port for port in ports if _listening(port)] == []
        assert not (state_dir / "stack.json").exists()  # stopped as on Ctrl-C
    finally:
        if make.poll() is None:
            make.kill()
        for pid in (stack, localstripe):  # orphans, if the fix ever regresses
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- 2. the port check binds as the servers do --------------------------------
def _port_left_in_time_wait() -> int:
    """A port whose server closed its end of a connection first, then stopped."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug does
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server closes first: its end goes to TIME_WAIT
            assert client.recv(1) == b""
    return port


def test_given_a_port_in_time_wait_when_checked_then_it_is_free():
    port = _port_left_in_time_wait()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the old check did: "in use"

    assert _port_free(port)


@pytest.mark.parametrize("reuse_address", [True, False])
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_given_a_live_listener_when_its_port_is_checked_then_it_is_in_use(host, reuse_address):
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse_address))
        server.bind((host, 0))
        server.listen()

        assert not _port_free(server.getsockname()[1])


# --- 3. a port out of range is one clear line ---------------------------------
@pytest.mark.parametrize(
    "variable, value",
    [("LOCAL_AWS_PORT", "99999"), ("LOCAL_API_PORT", "-1"), ("LOCAL_STRIPE_PORT", "65536")],
)
def test_given_a_port_out_of_range_when_the_stack_starts_then_it_stops_with_one_line(
    tmp_path, variable, value
):
    environment = child_stack_environment(**{variable: value})
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(tmp_path / "state")],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"make run: {variable} must be a port from 0 to 65535 (0: any free port), not {value}"
    ]


@pytest.mark.skipif(not ON_LINUX, reason="finds processes in /proc")
def test_given_a_port_held_by_a_process_when_the_stack_starts_then_the_line_names_it(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys, time\n"
         "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
         "print(s.getsockname()[1], flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        port = holder.stdout.readline().strip()
        result = subprocess.run(
            [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(tmp_path / "state")],
            cwd=PROJECT_DIR, env=child_stack_environment(LOCAL_API_PORT=port),
            capture_output=True, text=True, timeout=30,
        )
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"make run: port {port} on 127.0.0.1 is in use by pid {holder.pid} "
                           f"({sys.executable} -c import socket")
    assert line.endswith(f"; stop it (kill {holder.pid}) or set LOCAL_API_PORT to another port")


def test_given_another_moto_when_the_stack_starts_then_it_stops_with_one_line(tmp_path):
    # a moto other than the one the patches were written for, as pip would leave it
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '5.2.1' if name == 'moto' else real(name)\n")
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(tmp_path / "state")],
        cwd=PROJECT_DIR, env=child_stack_environment(PYTHONPATH=f"{tmp_path}:{PROJECT_DIR}"),
        capture_output=True, text=True, timeout=30,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("make run: the local AWS patches moto 5.2.5, but moto 5.2.1 is installed")


# --- 4-6. Cognito, through the local AWS's middleware -------------------------
class RecordedTrigger:
    """Stands in for the PostConfirmation Lambda: records each event."""

    def __init__(self) -> None:
        self.events = []

    def __call__(self, function_arn: str, payload: bytes):
        self.events.append(json.loads(payload))
        return None, b"null"


class LocalCognitoApi:
    """moto's server with AwsExtensions and LocalCognito, on an ephemeral port."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.trigger = RecordedTrigger()
        extensions = AwsExtensions(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", 0, extensions, threaded=True, request_handler=MotoRequestHandler
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.mail = []  # what Cognito would have mailed
        self.now = time.time()  # the local Cognito's clock, moved by hand
        extensions.attach_cognito(LocalCognito(self.client(), self.trigger,
                                               outbox=self.mail.append, clock=lambda: self.now))
        self.cognito = self.client()  # a user's client: its calls go through LocalCognito

    def code(self, email: str) -> str:
        """The latest confirmation code mailed to ``email``."""
        return [m["code"] for m in self.mail if m["to"] == email and "code" in m][-1]

    def client(self):
        return boto3.client(
            "cognito-idp",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{self._server.server_address[1]}",
        )

    def pool(self, case_sensitive=False):
        """A pool like ours (template.json): email as username, name required."""
        settings = (
            {} if case_sensitive is None else {"UsernameConfiguration": {"CaseSensitive": case_sensitive}}
        )
        pool_id = self.cognito.create_user_pool(
            PoolName=f"tenants-{uuid.uuid4().hex[:8]}",
            UsernameAttributes=["email"],
            AutoVerifiedAttributes=["email"],
            Schema=[{"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True}],
            LambdaConfig={"PostConfirmation": TRIGGER},
            **settings,
        )["UserPool"]["Id"]
        client_id = self.cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        return pool_id, client_id

    def sign_up(self, client_id: str, email: str, name: str = "Ada Ltd") -> str:
        return self.cognito.sign_up(
            ClientId=client_id,
            Username=email,
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": name}],
        )["UserSub"]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def api():
    running = LocalCognitoApi()
    yield running
    running.stop()


def test_given_a_confirmed_user_when_confirmed_again_then_refused_and_the_trigger_ran_once(api):
    _, client_id = api.pool()
    api.sign_up(client_id, "ada@example.com")
    api.cognito.confirm_sign_up(ClientId=client_id, Username="ada@example.com",
                                ConfirmationCode=api.code("ada@example.com"))

    with pytest.raises(
        api.cognito.exceptions.NotAuthorizedException,
        match="User cannot be confirmed. Current status is CONFIRMED",
    ):
        api.cognito.confirm_sign_up(
            ClientId=client_id, Username="ada@example.com", ConfirmationCode=api.code("ada@example.com")
        )
    assert len(api.trigger.events) == 1


def test_given_an_admin_confirmed_user_when_confirmed_again_then_refused_and_the_trigger_ran_once(api):
    pool_id, client_id = api.pool()
    api.sign_up(client_id, "ada@example.com")
    api.cognito.admin_confirm_sign_up(UserPoolId=pool_id, Username="ada@example.com")

    for confirm_again in (
        lambda: api.cognito.admin_confirm_sign_up(UserPoolId=pool_id, Username="ada@example.com"),
        lambda: api.cognito.confirm_sign_up(
            ClientId=client_id, Username="ada@example.com", ConfirmationCode="1"
        ),
    ):
        with pytest.raises(api.cognito.exceptions.NotAuthorizedException, match="CONFIRMED"):
            confirm_again()
    assert len(api.trigger.events) == 1


def test_given_two_confirms_at_once_then_exactly_one_runs_the_trigger(api):
    _, client_id = api.pool()
    api.sign_up(client_id, "ada@example.com")
    outcomes = []

    def confirm():
        try:
            api.client().confirm_sign_up(
                ClientId=client_id, Username="ada@example.com",
                ConfirmationCode=api.code("ada@example.com"),
            )
            outcomes.append("confirmed")
        except api.cognito.exceptions.NotAuthorizedException:
            outcomes.append("refused")

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["confirmed", "refused"]
    assert len(api.trigger.events) == 1


LONG = "x" * 100_000


def test_given_a_name_over_2048_characters_when_signing_up_then_refused_as_by_cognito(api):
    pool_id, client_id = api.pool()

    with pytest.raises(
        api.cognito.exceptions.InvalidParameterException,
        match=r"Value at 'userAttributes.2.member.value' failed to satisfy constraint: "
        r"Member must have length less than or equal to 2048",
    ):
        api.sign_up(client_id, "ada@example.com", name=LONG)
    assert api.cognito.list_users(UserPoolId=pool_id)["Users"] == []
    api.sign_up(client_id, "ada@example.com", name="x" * 2048)  # the limit itself is fine


def test_given_an_attribute_over_2048_characters_when_an_admin_creates_or_updates_then_refused(api):
    pool_id, client_id = api.pool()
    api.sign_up(client_id, "ada@example.com")
    api.cognito.admin_confirm_sign_up(UserPoolId=pool_id, Username="ada@example.com")
    token = api.cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ada@example.com", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    long_name = [{"Name": "name", "Value": LONG}]

    for call in (
        lambda: api.cognito.admin_create_user(
            UserPoolId=pool_id, Username="bob@example.com", UserAttributes=long_name,
            MessageAction="SUPPRESS",
        ),
        lambda: api.cognito.admin_update_user_attributes(
            UserPoolId=pool_id, Username="ada@example.com", UserAttributes=long_name
        ),
        lambda: api.cognito.update_user_attributes(AccessToken=token, UserAttributes=long_name),
    ):
        with pytest.raises(api.cognito.exceptions.InvalidParameterException, match="2048"):
            call()
    user = api.cognito.admin_get_user(UserPoolId=pool_id, Username="ada@example.com")
    assert {"Name": "name", "Value": "Ada Ltd"} in user["UserAttributes"]
    assert len(api.cognito.list_users(UserPoolId=pool_id)["Users"]) == 1


def test_given_a_case_insensitive_pool_when_an_email_signs_up_in_another_case_then_refused(api):
    pool_id, client_id = api.pool(case_sensitive=False)
    api.sign_up(client_id, "ada@example.com")

    with pytest.raises(
        api.cognito.exceptions.UsernameExistsException,
        match="An account with the given email already exists.",
    ):
        api.sign_up(client_id, "ADA@example.com")
    with pytest.raises(api.cognito.exceptions.UsernameExistsException):
        api.cognito.admin_create_user(
            UserPoolId=pool_id, Username="Ada@Example.com", MessageAction="SUPPRESS"
        )
    assert len(api.cognito.list_users(UserPoolId=pool_id)["Users"]) == 1


def test_given_a_case_insensitive_pool_when_a_user_is_named_in_another_case_then_found(api):
    pool_id, client_id = api.pool(case_sensitive=False)
    sub = api.sign_up(client_id, "ada@example.com")

    api.cognito.confirm_sign_up(ClientId=client_id, Username="ADA@example.com",
                                ConfirmationCode=api.code("ada@example.com"))

    assert [event["userName"] for event in api.trigger.events] == [sub]
    user = api.cognito.admin_get_user(UserPoolId=pool_id, Username="Ada@Example.COM")
    assert (user["Username"], user["UserStatus"]) == (sub, "CONFIRMED")


@pytest.mark.parametrize("case_sensitive", [True, None], ids=["CaseSensitive true", "not set"])
def test_given_a_case_sensitive_pool_then_emails_in_other_cases_are_other_users(api, case_sensitive):
    pool_id, client_id = api.pool(case_sensitive=case_sensitive)

    first = api.sign_up(client_id, "ada@example.com")
    second = api.sign_up(client_id, "ADA@example.com")

    assert first != second
    with pytest.raises(api.cognito.exceptions.UserNotFoundException):
        api.cognito.admin_get_user(UserPoolId=pool_id, Username="Ada@Example.com")


# --- 4-6 on the running stack: its pool is set up as in AWS ------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("robustness") / "state")
    yield running
    running.stop()


@pytest.mark.e2e
def test_on_the_stack_a_second_confirm_is_refused_and_one_onboarding_runs(stack):
    tenant_id = stack.sign_up_and_confirm("once@example.com", "Once Ltd")
    stack.task_token(tenant_id)  # the trigger started the onboarding

    with pytest.raises(stack.cognito.exceptions.NotAuthorizedException, match="CONFIRMED"):
        stack.cognito.confirm_sign_up(
            ClientId=stack.outputs["userPoolClientId"],
            Username="once@example.com",
            ConfirmationCode="000000",
        )
    executions = stack.sfn.list_executions(stateMachineArn=stack.outputs["stateMachineArn"])
    assert [e["name"] for e in executions["executions"]].count(tenant_id) == 1


@pytest.mark.e2e
def test_on_the_stack_a_name_of_100000_characters_is_refused(stack):
    with pytest.raises(stack.cognito.exceptions.InvalidParameterException, match="2048"):
        stack.cognito.sign_up(
            ClientId=stack.outputs["userPoolClientId"],
            Username="long@example.com",
            Password=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": "long@example.com"},
                {"Name": "name", "Value": LONG},
            ],
        )


@pytest.mark.e2e
def test_on_the_stack_the_same_email_in_another_case_is_not_a_second_tenant(stack):
    stack.sign_up_and_confirm("grace@example.com", "Grace Co")

    with pytest.raises(
        stack.cognito.exceptions.UsernameExistsException,
        match="An account with the given email already exists.",
    ):
        stack.sign_up_and_confirm("GRACE@example.com", "Grace Co again")


# --- confirmation codes and temporary passwords, as Cognito mails them ----------------------
def test_given_a_sign_up_then_a_six_digit_code_is_mailed_and_only_it_confirms(api):
    pool_id, client_id = api.pool()
    api.sign_up(client_id, "ada@example.com")
    [message] = api.mail
    assert message["to"] == "ada@example.com" and re.fullmatch(r"\d{6}", message["code"])
    assert message["subject"] and message["sentAt"].endswith("Z")
    wrong = f"{(int(message['code']) + 1) % 10 ** 6:06d}"

    with pytest.raises(api.cognito.exceptions.CodeMismatchException):
        api.cognito.confirm_sign_up(ClientId=client_id, Username="ada@example.com",
                                    ConfirmationCode=wrong)
    assert api.trigger.events == []
    api.cognito.confirm_sign_up(ClientId=client_id, Username="ada@example.com",
                                ConfirmationCode=message["code"])
    assert len(api.trigger.events) == 1


def test_given_a_day_old_code_then_expired_and_a_resent_code_confirms(api):
    _, client_id = api.pool()
    api.sign_up(client_id, "ada@example.com")
    old = api.code("ada@example.com")
    api.now += 24 * 3600 + 1

    with pytest.raises(api.cognito.exceptions.ExpiredCodeException):
        api.cognito.confirm_sign_up(ClientId=client_id, Username="ada@example.com",
                                    ConfirmationCode=old)
    api.cognito.resend_confirmation_code(ClientId=client_id, Username="ada@example.com")
    new = api.code("ada@example.com")
    api.cognito.confirm_sign_up(ClientId=client_id, Username="ada@example.com",
                                ConfirmationCode=new)
    assert len(api.trigger.events) == 1


def test_given_an_admin_created_user_then_a_temporary_password_is_mailed_and_signs_in(api):
    pool_id, client_id = api.pool()
    api.cognito.admin_create_user(UserPoolId=pool_id, Username="ops@example.com",
                                  UserAttributes=[{"Name": "name", "Value": "Ops"}])
    [message] = api.mail
    assert message["to"] == "ops@example.com" and "code" not in message

    answer = api.cognito.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ops@example.com", "PASSWORD": message["temporaryPassword"]})

    assert answer["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    api.cognito.admin_create_user(UserPoolId=pool_id, Username="quiet@example.com",
                                  MessageAction="SUPPRESS",
                                  UserAttributes=[{"Name": "name", "Value": "Q"}])
    assert len(api.mail) == 1  # SUPPRESS mails nothing
