"""``make run``: the whole app on this machine, in the foreground until Ctrl-C.

Starts, all bound to 127.0.0.1:
- the local AWS (moto's server, port LOCAL_AWS_PORT, default 4566) holding the
  stage ``local``: table, event bus, user pool with its PostConfirmation
  trigger, and the state machine from statemachine.json, executed by moto's
  Step Functions engine, whose Lambda tasks run the app's handlers here;
- the app's API as ``chalice local`` serves it (port LOCAL_API_PORT, default 8000);
- localstripe, when STRIPE_API_KEY is set (port LOCAL_STRIPE_PORT, default
  8420) unless STRIPE_API_BASE points Stripe calls elsewhere.

Writes .local/stack.json once ready, appends every event put on the bus to
.local/events.jsonl and writes .local/env for ``source``-ing in a shell.
Pass port 0 for an ephemeral port (tests do). It stops, as on Ctrl-C, when
the process that started it ends, even by ``kill -9`` (scripts/local/processes.py),
and localstripe ends with it: nothing is left holding the ports. A port in use
is named with the process holding it.
"""
import argparse
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib.settings import CONTACT_LIST_MODES, SUBSCRIBER_STORE
from scripts.local.patching import MotoVersionError, check_moto_version
from scripts.local.processes import describe, port_owner, stop_with_parent
from scripts.shared import PROJECT_DIR, TimedOut, eventually, stack_name, stripe_secret_name

STAGE = "local"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
logger = logging.getLogger("local.stack")

# Fake credentials and a fixed region: whatever uses these cannot reach AWS.
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class StackError(RuntimeError):
    """A problem the person running the stack can fix; printed without a traceback."""


class StackLock:
    """One stack per state directory: a second ``make run`` gets a clear message."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / "stack.lock"
        self._file: Any = None

    def acquire(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self._path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            owner = self._file.read().strip()
            self._file.close()
            self._file = None
            who = describe(int(owner)) if owner.isdigit() else "another process"
            stop = f" or kill {owner}" if owner.isdigit() else ""
            raise StackError(
                f"a local stack is already running on {self._path.parent}: {who}. Stop it "
                f"with Ctrl-C in its terminal{stop}, or use that one: its endpoints are in "
                "stack.json."
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        if self._file:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class JsonLines:
    """A file of one JSON object a line, emptied when the stack starts, appended
    to from any thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.write_text("")

    def append(self, objects: list[dict[str, Any]]) -> None:
        if objects:
            with self._lock, open(self._path, "a") as out:
                out.write("".join(json.dumps(o) + "\n" for o in objects))


class EventLog(JsonLines):
    """Appends each event accepted on the stage's bus to events.jsonl."""

    def __init__(self, path: Path, bus_name: str) -> None:
        super().__init__(path)
        self._bus_name = bus_name

    def __call__(self, entries: list[dict[str, Any]]) -> None:
        events = []
        for entry in entries:
            bus = entry.get("EventBusName") or "default"
            if bus.rsplit("/", 1)[-1] != self._bus_name:
                continue
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except ValueError:
                detail = entry.get("Detail")
            events.append({
                "version": "0",
                "id": entry["EventId"],
                "detail-type": entry.get("DetailType"),
                "source": entry.get("Source"),
                "account": ACCOUNT,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": REGION,
                "resources": entry.get("Resources", []),
                "eventBusName": self._bus_name,
                "detail": detail,
            })
        self.append(events)


class Outbox(JsonLines):
    """Every message the local Cognito would mail, and every one the app sends
    through SES (the tenants' outcome mail), one JSON object a line."""

    def __call__(self, message: dict[str, Any]) -> None:
        self.append([message])


def _port_free(port: int) -> bool:
    """Whether our servers could listen on ``port``.

    Binds as they do (werkzeug, http.server and aiohttp set SO_REUSEADDR), so
    connections a stopped stack left in TIME_WAIT do not count as in use.
    """
    if port == 0:
        return True
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _port_in_use(port: int, variable: str) -> StackError:
    """"Port in use", naming the process that holds it when /proc says."""
    owner = port_owner(port)
    held = f" by {describe(owner)}" if owner is not None else ""
    stop = f"stop it (kill {owner})" if owner is not None else "free it"
    return StackError(f"port {port} on 127.0.0.1 is in use{held}; {stop} or set {variable} "
                      "to another port")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalStack:
    def __init__(
        self,
        aws_port: int,
        api_port: int,
        state_dir: Path,
        stripe_api_key: str | None = None,
        stripe_api_base: str | None = None,
        stripe_port: int = 8420,
        approval_timeout_seconds: int | None = None,
        contact_list_mode: str = SUBSCRIBER_STORE,
        enforce_ses_quotas: bool = False,
        reconcile_seconds: int = 60,
        retry_interval_seconds: int | None = None,
    ) -> None:
        self._reconcile_seconds = reconcile_seconds
        self._retry_interval = retry_interval_seconds
        self._stopping = threading.Event()
        self.bus_name = stack_name(STAGE)  # the template's EventBus name
        self.resources: Any = None
        self._contact_list_mode = contact_list_mode
        self._enforce_ses_quotas = enforce_ses_quotas
        self.state_dir = state_dir
        self._aws_port = aws_port
        self._api_port = api_port
        self._stripe_key = stripe_api_key
        self._stripe_base = stripe_api_base
        self._stripe_port = stripe_port
        self._approval_timeout = approval_timeout_seconds
        self._stripe_process: subprocess.Popen | None = None
        self._aws: Any = None
        self._api: Any = None
        self._api_thread: threading.Thread | None = None
        self.outputs: dict[str, Any] = {}

    # --- start -----------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        for port, variable in ((self._aws_port, "LOCAL_AWS_PORT"), (self._api_port, "LOCAL_API_PORT")):
            if not _port_free(port):
                raise _port_in_use(port, variable)
        self._isolate_from_real_aws()
        self._start_aws()
        stripe_base = self._start_stripe() if self._stripe_key else None
        app_obj, config = self._load_app(stripe_base)
        self._bind_api(app_obj, config)  # its URL is in the admin notifications' links
        self.outputs = self._provision()
        self._run_lambdas_in_process(app_obj)
        self._warm_up()
        self._start_api(app_obj, config)
        self._start_reconciling()
        self.outputs["apiUrl"] = self._api_url()
        if stripe_base:
            self.outputs["stripeApiBase"] = stripe_base
        self._write_state_files()
        return self.outputs

    def _isolate_from_real_aws(self) -> None:
        """Fake credentials and a fixed region: nothing here can reach AWS."""
        for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(variable, None)
        os.environ.update(FAKE_AWS_ENVIRONMENT)

    def _start_aws(self) -> None:
        from scripts.local.aws import AwsExtensions, LocalAwsServer, behave_like_aws

        behave_like_aws(self._enforce_ses_quotas)
        events = self.state_dir / "events.jsonl"
        self._event_log = EventLog(events, self.bus_name)
        self._outbox = Outbox(self.state_dir / "outbox.jsonl")
        # and the tenants' outcome mail, which the app sends through SES (scripts/local/ses.py)
        from scripts.local.ses import deliver_mail_to

        deliver_mail_to(self._outbox)
        self._aws = LocalAwsServer(
            self._aws_port, lambda app: AwsExtensions(app, on_events=self._event_log)
        ).start()
        from scripts.local import sns

        sns.mail_to(self._outbox, self._aws.endpoint)  # SNS's email and its confirmation links
        # Every boto3 client in this process, the app's included, goes here.
        os.environ["AWS_ENDPOINT_URL"] = self._aws.endpoint
        os.environ["MOTO_PORT"] = str(self._aws.port)
        logger.info("local AWS on %s", self._aws.endpoint)

    def _start_stripe(self) -> str:
        if self._stripe_base:
            return self._stripe_base
        port = self._stripe_port or _free_port()
        if not _port_free(port):
            error = _port_in_use(port, "LOCAL_STRIPE_PORT")
            raise StackError(f"{error}, or STRIPE_API_BASE to a Stripe-compatible server "
                             "you run")
        # It dies with this process, even on kill -9 (stripe_server.exit_with_parent);
        # started from the main thread, whose end the kernel's signal follows.
        process = self._stripe_process = subprocess.Popen(
            [sys.executable, "-m", "scripts.local.stripe_server", str(port), str(os.getpid())],
            cwd=PROJECT_DIR,
        )

        def listening() -> bool:
            if process.poll() is not None:
                raise StackError("localstripe exited while starting; see its output above")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        try:
            eventually(listening, 20, "localstripe did not start listening", interval=0.1)
        except TimedOut as error:
            raise StackError(str(error)) from None
        return f"http://127.0.0.1:{port}"

    def _load_app(self, stripe_base: str | None):
        from chalice.cli.factory import CLIFactory

        # AWS answers in milliseconds; this emulator, under a burst, in seconds
        os.environ.setdefault("AWS_CLIENT_TIMEOUT_SECONDS", "30")
        os.environ.pop("STRIPE_API_BASE", None)
        if stripe_base:
            os.environ["STRIPE_API_BASE"] = stripe_base
        factory = CLIFactory(str(PROJECT_DIR), environ=os.environ)
        config = factory.create_config_obj(chalice_stage_name=STAGE)
        return config.chalice_app, config

    def _run_lambdas_in_process(self, app_obj: Any) -> None:
        import boto3

        from scripts.local.lambdas import LocalLambdas

        self.lambdas = LocalLambdas(app_obj, self.resources.function_names)
        boto3.setup_default_session(region_name=REGION)
        self.lambdas.install(boto3.DEFAULT_SESSION)
        self._aws.extensions.attach_lambdas(self.lambdas)

    def _start_reconciling(self) -> None:
        """What the EventBridge schedule rule does in AWS every 15 minutes, here every
        LOCAL_RECONCILE_SECONDS (0: only on demand, make admin ARGS=reconcile)."""
        if not self._reconcile_seconds:
            return
        from scripts.local.lambdas import scheduled_event

        function = self.resources.function_names["reconcile"]

        def every_period() -> None:
            while not self._stopping.wait(self._reconcile_seconds):
                self.lambdas.invoke(function, json.dumps(scheduled_event(REGION, ACCOUNT)).encode())

        threading.Thread(target=every_period, name="local-reconcile", daemon=True).start()

    def _provision(self) -> dict[str, Any]:
        """The stage's resources from template.json, then the app's environment from them."""
        import boto3

        from scripts.local.cognito import LocalCognito
        from scripts.local.resources import provision_stage

        session = boto3.session.Session(region_name=REGION)
        self.resources = provision_stage(
            session,
            STAGE,
            ACCOUNT,
            contact_list_mode=self._contact_list_mode,
            stripe=bool(self._stripe_key),
            approval_timeout_seconds=self._approval_timeout,
            retry_interval_seconds=self._retry_interval,
            api_url=self._api_url(),
        )
        if self._stripe_key:
            # the app reads the key from the local Secrets Manager, as in AWS
            session.client("secretsmanager").create_secret(
                Name=stripe_secret_name(STAGE), SecretString=self._stripe_key
            )
        os.environ.update(self.resources.environment)
        # the pages' amazon-cognito-identity-js talks to the emulated Cognito here
        os.environ["PUBLIC_COGNITO_ENDPOINT"] = self._aws.endpoint + "/"
        self._aws.extensions.attach_cognito(
            LocalCognito(session.client("cognito-idp"), self.lambdas_invoke,
                         outbox=self._outbox)
        )
        return {
            "stage": STAGE,
            "awsEndpoint": self._aws.endpoint,
            "region": REGION,
            **self.resources.outputs(),
            "stripe": bool(self._stripe_key),
            "approvalTimeoutSeconds": self._approval_timeout or 86400,
            "contactListMode": self._contact_list_mode,
            "sesQuotasEnforced": self._enforce_ses_quotas,
            "functionEnvironment": self.resources.environment,
        }

    def lambdas_invoke(self, function: str, payload: bytes):
        """Cognito's triggers, answered by the app's handlers in this process."""
        return self.lambdas.invoke(function, payload)

    def _warm_up(self) -> None:
        """Build the clients every onboarding needs before the first sign-up.

        Loading botocore's service models is the slowest thing this process
        does; done lazily, a burst of sign-ups would all queue behind it.
        """
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
        )

        from chalicelib import dependencies as deps
        from chalicelib.billing import StripeBilling

        lambda_eval_utils.boto_client_for(region=REGION, service="lambda")
        for build in (deps.tenants, deps.workflow, deps.publisher, deps.contact_lists):
            build()
        billing = deps.billing()
        if isinstance(billing, StripeBilling):
            billing.stripe_client()

    def _bind_api(self, app_obj: Any, config: Any) -> None:
        """The API's socket, before the stage is made: its port (0: any) is then known."""
        from chalice.local import create_local_server

        self._api = create_local_server(app_obj, config, "127.0.0.1", self._api_port)

    def _api_url(self) -> str:
        return f"http://127.0.0.1:{self._api.server.server_address[1]}"

    def _start_api(self, app_obj: Any, config: Any) -> None:
        from scripts.local.auth import TokenCheck
        from scripts.local.gateway import install

        pools = {"admins": self.resources.ref("AdminUserPool"),
                 "tenants": self.resources.ref("UserPool")}
        install(self._api, app_obj, config, TokenCheck(pools, REGION))
        # http.server's backlog of 5 resets concurrent clients (a load run, an
        # admin script in a loop); API Gateway has no such limit.
        self._api.server.socket.listen(128)
        self._api_thread = threading.Thread(
            target=self._api.server.serve_forever, name="local-api", daemon=True
        )
        self._api_thread.start()
        logger.info("local API on 127.0.0.1:%s: every token is checked as API Gateway's "
                    "Cognito authorizers check it (signature, user pool, ID token, expiry)",
                    self._api.server.server_address[1])

    def _write_state_files(self) -> None:
        out = self.outputs
        env = {
            "AWS_ENDPOINT_URL": out["awsEndpoint"],
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": out["region"],
            "API_URL": out["apiUrl"],
            "USER_POOL_ID": out["userPoolId"],
            "USER_POOL_CLIENT_ID": out["userPoolClientId"],
            "ADMIN_USER_POOL_ID": out["adminUserPoolId"],
            "ADMIN_USER_POOL_CLIENT_ID": out["adminUserPoolClientId"],
            "TABLE_NAME": out["tableName"],
            "STATE_MACHINE_ARN": out["stateMachineArn"],
        }
        _write_atomically(self.state_dir / "env",
                          "".join(f"export {key}={value}\n" for key, value in env.items()))
        # last, and whole: its presence means "ready" (scripts/local/child.py)
        _write_atomically(self.state_dir / "stack.json", json.dumps(out, indent=2) + "\n")

    # --- stop ------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        if self._api is not None:
            if self._api_thread is not None:  # shutdown() waits for a serve_forever that never began
                self._api.server.shutdown()
            self._api.server.server_close()
        if self._aws is not None:
            self._aws.stop()
        if self._stripe_process is not None:
            self._stripe_process.terminate()
            try:
                self._stripe_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._stripe_process.kill()
        for name in ("stack.json", "env"):
            (self.state_dir / name).unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    """A reader sees the file whole or not at all: written aside, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def how_to_try_it(out: dict[str, Any], state_dir: Path) -> str:
    rel = os.path.relpath(state_dir)
    execution_prefix = out["stateMachineArn"].replace(":stateMachine:", ":execution:")
    return f"""
Local stack ready (stage "{out['stage']}", Stripe {'on' if out['stripe'] else 'off'}, \
contact lists {out['contactListMode']}{', SES quotas enforced' if out['sesQuotasEnforced'] else ''}).
  API            {out['apiUrl']}   (sign-up page {out['apiUrl']}/signup, console {out['apiUrl']}/admin)
  local AWS      {out['awsEndpoint']}   (region {out['region']}, any credentials)
  user pools     tenants {out['userPoolId']}   admins {out['adminUserPoolId']}
  events         {rel}/events.jsonl     mail (codes, passwords, admin notifications)  {rel}/outbox.jsonl

How to try it, in another terminal (Ctrl-C here stops everything):
  source {rel}/env && export PATH="$PWD/.venv/bin:$PATH"
  # 1. sign up, and confirm with the code Cognito "mailed" to the outbox
  aws cognito-idp sign-up --client-id $USER_POOL_CLIENT_ID --username ada@example.com \\
      --password 'Correct-Horse-9' \\
      --user-attributes Name=email,Value=ada@example.com Name=name,Value="Ada Ltd"
  CODE=$(tail -n 1 {rel}/outbox.jsonl | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
  aws cognito-idp confirm-sign-up --client-id $USER_POOL_CLIENT_ID --username ada@example.com \\
      --confirmation-code $CODE
  TENANT=<UserSub>     # printed by sign-up
  # 2. become an admin: the temporary password is in the outbox too; login asks for it, then a new one.
  #    Open the link of SNS's "Subscription Confirmation" there: waiting tenants then mail you too.
  make admin ARGS="add-admin ops@example.com"  &&  make admin ARGS="login ops@example.com"
  # 3. decide: by tenant id, or with the task token of the execution, as the seed's route takes it
  make admin ARGS="list"  &&  make admin ARGS="approve $TENANT"
  #    or: TOKEN from  aws stepfunctions get-execution-history --execution-arn {execution_prefix}:$TENANT
  #        curl -X POST $API_URL/tenant/finalize -H "Authorization: $(make -s admin ARGS=token)" \\
  #             -H 'Content-Type: application/json' -d '{{"taskToken": "<taskToken>", "status": "approved"}}'
  # 4. see the result
  make admin ARGS="show $TENANT"  &&  tail -n 1 {rel}/events.jsonl
"""


def _env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise StackError(f"{name} must be a whole number, not {value!r}") from None


def _env_port(name: str, default: int) -> int:
    port = _env_int(name, default)
    if port is None or not 0 <= port <= 65535:
        raise StackError(f"{name} must be a port from 0 to 65535 (0: any free port), not {port}")
    return port


def _positive(seconds: int | None, name: str = "APPROVAL_TIMEOUT_SECONDS") -> int | None:
    if seconds is not None and seconds <= 0:
        raise StackError(f"{name} must be a positive number of seconds")
    return seconds


def _not_negative(name: str, default: int) -> int:
    seconds = _env_int(name, default)
    if seconds is None or seconds < 0:
        raise StackError(f"{name} must be 0 (off) or a positive number of seconds")
    return seconds


def _contact_list_mode() -> str:
    mode = os.environ.get("CONTACT_LIST_MODE", "").strip() or SUBSCRIBER_STORE
    if mode not in CONTACT_LIST_MODES:
        raise StackError(f"CONTACT_LIST_MODE must be one of {', '.join(CONTACT_LIST_MODES)}")
    return mode


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # moto logs each state machine error with its whole parse tree; the
    # failing handler's own traceback (local.lambda) is the useful part.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", default=os.environ.get("LOCAL_STATE_DIR", ".local"))
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir).resolve()

    lock = StackLock(state_dir)
    stack: LocalStack | None = None
    stopping = threading.Event()
    stop_with_parent()  # make run killed, even with -9: the stack stops as on Ctrl-C
    try:
        check_moto_version()  # before anything: the patches fit one moto only
        lock.acquire()
        stack = LocalStack(
            aws_port=_env_port("LOCAL_AWS_PORT", 4566),
            api_port=_env_port("LOCAL_API_PORT", 8000),
            state_dir=state_dir,
            stripe_api_key=os.environ.get("STRIPE_API_KEY") or None,
            stripe_api_base=os.environ.get("STRIPE_API_BASE") or None,
            stripe_port=_env_port("LOCAL_STRIPE_PORT", 8420),
            approval_timeout_seconds=_positive(_env_int("APPROVAL_TIMEOUT_SECONDS", None)),
            contact_list_mode=_contact_list_mode(),
            enforce_ses_quotas=os.environ.get("LOCAL_ENFORCE_SES_QUOTAS", "") in ("1", "true"),
            reconcile_seconds=_not_negative("LOCAL_RECONCILE_SECONDS", 60),
            retry_interval_seconds=_positive(_env_int("LOCAL_RETRY_INTERVAL_SECONDS", None),
                                             "LOCAL_RETRY_INTERVAL_SECONDS"),
        )
        os.environ.pop("STRIPE_API_KEY", None)  # the app reads it from Secrets Manager
        outputs = stack.start()
        print(how_to_try_it(outputs, state_dir), flush=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        stopping.wait()
        print("\nStopping the local stack.", flush=True)
        return 0
    except (StackError, MotoVersionError) as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the stack was ready
        print("\nmake run: interrupted while starting; stopped.", file=sys.stderr)
        return 130
    finally:
        if stack is not None:
            stack.stop()
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
