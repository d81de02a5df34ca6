"""The embedded local AWS: moto's server on 127.0.0.1, plus what AWS does
that moto does not (see local_cognito.py), plus a tap on the event bus.

moto's Step Functions engine executes state machines for real here
(``execute_state_machine``); its Lambda calls are answered in process by
local_lambda.LocalLambdas.
"""
import contextlib
import io
import json
import logging
import threading
from typing import Any, Callable, Dict, List, Optional

from werkzeug.serving import make_server

logger = logging.getLogger("local.aws")

COGNITO = "AWSCognitoIdentityProviderService."
PUT_EVENTS = "AWSEvents.PutEvents"


def enable_state_machine_execution() -> None:
    """Make moto's Step Functions run definitions, answering tokens as AWS does."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    answer_spent_task_tokens_like_aws()
    reuse_lambda_clients_of_the_engine()


def reuse_lambda_clients_of_the_engine() -> None:
    """moto's engine builds a new boto3 client for every Lambda task it runs,
    which costs more CPU than the task itself; one client per default
    session (the one our Lambda hook is registered on) and region does."""
    import boto3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    if getattr(lambda_eval_utils, "_clients_reused", False):
        return
    build = lambda_eval_utils.boto_client_for
    cache: Dict[Any, Any] = {}

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (id(boto3.DEFAULT_SESSION), region, service)
        with _client_lock:
            entry = cache.get(key)
            if entry is None or entry[0] is not boto3.DEFAULT_SESSION:
                entry = (boto3.DEFAULT_SESSION, build(region, service, state_credentials))
                cache[key] = entry
        return entry[1]

    lambda_eval_utils.boto_client_for = boto_client_for
    lambda_eval_utils._clients_reused = True


_token_lock = threading.Lock()
_client_lock = threading.Lock()


def answer_spent_task_tokens_like_aws() -> None:
    """AWS answers TaskTimedOut for a task token that was already answered or
    whose task timed out, also once its execution has ended. moto accepts the
    second answer while the execution runs and calls the token invalid after.
    Patched here (moto is pinned) so a double approval gets AWS's answer.
    """
    from moto.stepfunctions.parser.api import ExecutionStatus, TaskTimedOut
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if getattr(StepFunctionsParserBackend, "_tokens_like_aws", False):
        return

    def spent(backend: Any, token: str) -> bool:
        for execution in backend._get_executions():
            worker = execution.exec_worker
            endpoint = worker.env.callback_pool_manager.get(token) if worker else None
            if endpoint is not None:
                return (
                    execution.status != ExecutionStatus.RUNNING
                    or endpoint._outcome is not None
                    or endpoint.consumer_error is not None
                )
        return False

    def guarded(original: Callable) -> Callable:
        def answer(backend: Any, task_token: str, *args: Any, **kwargs: Any) -> Any:
            with _token_lock:  # two admins at once: exactly one answer lands
                if spent(backend, task_token):
                    raise TaskTimedOut(
                        "Task Timed Out: 'Provided task does not exist anymore'",
                        "TaskTimedOut",
                    )
                return original(backend, task_token, *args, **kwargs)

        return answer

    StepFunctionsParserBackend.send_task_success = guarded(
        StepFunctionsParserBackend.send_task_success
    )
    StepFunctionsParserBackend.send_task_failure = guarded(
        StepFunctionsParserBackend.send_task_failure
    )
    StepFunctionsParserBackend._tokens_like_aws = True


class AwsExtensions:
    """WSGI middleware around moto's app for the calls we must extend."""

    def __init__(
        self,
        app: Callable,
        cognito: Any = None,
        on_events: Optional[Callable[[List[Dict[str, Any]]], None]] = None,
    ) -> None:
        self._app = app
        self._cognito = cognito  # a LocalCognito, set once the stack has clients
        self._on_events = on_events
        self._user_state_lock = threading.Lock()

    def attach_cognito(self, cognito: Any) -> None:
        self._cognito = cognito

    def __call__(self, environ: Dict[str, Any], start_response: Callable):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        cognito_call = (
            self._cognito is not None
            and target.startswith(COGNITO)
            and not environ.get("HTTP_X_LOCAL_COGNITO")  # cognito.INTERNAL_HEADER: its own calls
        )
        if target != PUT_EVENTS and not cognito_call:
            return self._app(environ, start_response)

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return self._app(environ, start_response)  # moto answers what it makes of it

        from scripts.local.cognito import CognitoError

        try:
            if cognito_call:
                status, headers, body = self._call_cognito(
                    target[len(COGNITO):], request, environ
                )
            else:
                status, headers, body = self._call_moto(environ)
                if status.startswith("200"):
                    self._tap_events(request, body)
        except CognitoError as error:
            status, headers, body = _json_error(error.code, error.message)
        start_response(status, headers)
        return [body]

    def _call_cognito(self, operation: str, request: Dict[str, Any], environ: Dict[str, Any]):
        """moto's answer, with what LocalCognito adds before and after it."""
        from scripts.local.cognito import CHANGES_USER_STATE

        exclusive = operation in CHANGES_USER_STATE
        with self._user_state_lock if exclusive else contextlib.nullcontext():
            forwarded = self._cognito.before(operation, request)
            if forwarded != request:
                raw = json.dumps(forwarded).encode()
                environ["wsgi.input"] = io.BytesIO(raw)
                environ["CONTENT_LENGTH"] = str(len(raw))
            status, headers, body = self._call_moto(environ)
        if status.startswith("200"):
            self._cognito.after(operation, forwarded)
        return status, headers, body

    def _call_moto(self, environ: Dict[str, Any]):
        captured: Dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self._app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return captured["status"], captured["headers"], body

    def _tap_events(self, request: Dict[str, Any], body: bytes) -> None:
        if self._on_events is None:
            return
        try:
            results = json.loads(body).get("Entries", [])
        except ValueError:
            return
        accepted = []
        for entry, result in zip(request.get("Entries", []), results):
            if result.get("EventId"):
                accepted.append({**entry, "EventId": result["EventId"]})
        if accepted:
            self._on_events(accepted)


def _json_error(code: str, message: str):
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(body))),
        ("x-amzn-ErrorType", code),
    ]
    return "400 Bad Request", headers, body


def _dispatcher(create_backend_app: Callable) -> Callable:
    """moto's request dispatcher, remembering which backend serves which host.

    moto lists its package directory on disk for every request, under a lock
    all requests share; with a few concurrent executions that lock, not the
    work, set the pace. The answer for a host never changes, so keep it.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class RememberingDispatcher(DomainDispatcherApplication):
        def __init__(self, create_app: Callable) -> None:
            super().__init__(create_app)
            self._backend_of_host: Dict[Optional[str], Any] = {}

        def get_backend_for_host(self, host: Optional[str]) -> Any:
            if host not in self._backend_of_host:
                self._backend_of_host[host] = super().get_backend_for_host(host)
            return self._backend_of_host[host]

    return RememberingDispatcher(create_backend_app)


class LocalAwsServer:
    """moto's server app, extended, on 127.0.0.1 in a background thread."""

    def __init__(self, port: int, extensions_factory: Callable[[Callable], AwsExtensions]):
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app

        enable_state_machine_execution()
        self.extensions = extensions_factory(_dispatcher(create_backend_app))
        self._server = make_server(
            "127.0.0.1",
            port,
            self.extensions,
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-aws", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalAwsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
