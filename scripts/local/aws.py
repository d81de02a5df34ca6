"""The embedded local AWS: moto's server on 127.0.0.1, plus what AWS does
that moto does not (see cognito.py), plus a tap on the event bus.

moto's Step Functions engine executes state machines for real here
(``execute_state_machine``); its Lambda calls are answered in process by
lambdas.LocalLambdas.
"""
import contextlib
import io
import json
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import make_server

from scripts.local.patching import check_moto_version, replace

logger = logging.getLogger("local.aws")

COGNITO = "AWSCognitoIdentityProviderService."
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
PUT_EVENTS = "AWSEvents.PutEvents"


def reuse_lambda_clients_of_the_engine() -> None:
    """moto's engine builds a new boto3 client for every Lambda task it runs,
    which costs more CPU than the task itself; one client per default
    session (the one our Lambda hook is registered on) and region does."""
    import boto3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    def build(moto_own: Callable[..., Any]) -> Callable[..., Any]:
        cache: dict[Any, Any] = {}

        def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            key = (id(boto3.DEFAULT_SESSION), region, service)
            with _client_lock:
                entry = cache.get(key)
                if entry is None or entry[0] is not boto3.DEFAULT_SESSION:
                    entry = (boto3.DEFAULT_SESSION, moto_own(region, service, state_credentials))
                    cache[key] = entry
            return entry[1]

        return boto_client_for

    replace(lambda_eval_utils, "boto_client_for", build)


def remember_backends_by_host() -> None:
    """moto's server lists its package directory on disk for every request, to
    find the backend of the request's host, under a lock all requests share;
    with a few concurrent executions that lock, not the work, sets the pace.
    The answer for a host never changes, so keep it."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def build(moto_own: Callable[..., Any]) -> Callable[..., Any]:
        def get_backend_for_host(dispatcher: Any, host: str | None) -> Any:
            known = dispatcher.__dict__.setdefault("_backend_of_host", {})
            if host not in known:
                known[host] = moto_own(dispatcher, host)
            return known[host]

        return get_backend_for_host

    replace(DomainDispatcherApplication, "get_backend_for_host", build)


_token_lock = threading.Lock()  # every answer to a token, and every token's timeout
_client_lock = threading.Lock()


class _Deadline:
    """When the attempt of a task waiting for its token runs out of time
    (``time.monotonic()``), and whether it has timed out. Changed only under
    ``_token_lock``."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.passed = False


# the live attempt's deadline of every waiting task, by its CallbackEndpoint
_deadlines: "weakref.WeakKeyDictionary[Any, _Deadline]" = weakref.WeakKeyDictionary()


def _timed_out(endpoint: Any) -> bool:
    """Whether the task waiting on ``endpoint`` has timed out; an unanswered
    token whose deadline is behind us times out now. Call under _token_lock."""
    deadline = _deadlines.get(endpoint)
    if deadline is None:
        return False
    if endpoint.get_outcome() is None and time.monotonic() >= deadline.at:
        deadline.passed = True
    return deadline.passed


class _OuterTimerOff:
    """A state as moto's attempt runner (``_evaluate_with_timeout``) sees it,
    with a TimeoutSeconds it never reaches: the wait for the token keeps the
    real one. Everything else is the state's own."""

    def __init__(self, state: Any, never: Any) -> None:
        self._state = state
        self.timeout = never

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)


def end_token_waits_like_aws() -> None:
    """Make an answer to a task token and the task's timeout exclude each
    other, as in AWS.

    In AWS, SendTaskSuccess (or SendTaskFailure) is the commit point: the
    service records the answer and the task's outcome at once, so a call that
    was accepted is the task's result even if TimeoutSeconds runs out a
    millisecond later, and a call that arrives after the timeout fired gets
    TaskTimedOut. Never both: no 200 for a decision whose tenant then times
    out.

    moto times a task out in two places that do not talk to each other: the
    attempt runner (``ExecutionState._evaluate_with_timeout``) stops waiting
    for the task's thread after TimeoutSeconds, even if that thread has just
    accepted an answer and is still handing it on; and SendTaskSuccess is
    accepted until the execution ends, long after its task timed out.

    So, for a Task waiting for its token (without HeartbeatSeconds), one
    deadline per attempt, decided under ``_token_lock``:
    - the attempt runner sets the deadline and waits for the task's thread
      without a limit of its own;
    - the task's wait for the token ends at the deadline, and, under the
      lock, either finds an answer (it wins) or marks the deadline passed;
    - an answer, under the same lock, is refused with TaskTimedOut once the
      deadline is passed or its time is up, and accepted otherwise.
    Whichever takes the lock first decides; the other sees its decision. (A
    task Lambda returning after the deadline finds it passed at once; one
    that never returns would keep its execution running: ours return.)
    """
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        TimeoutSeconds,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import (
        ExecutionState,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    StateTaskServiceCallback = state_task_service_callback.StateTaskServiceCallback

    never = TimeoutSeconds(timeout_seconds=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)

    def token_of_attempt(state: Any, env: Any) -> Any:
        """The CallbackEndpoint this attempt will wait on, if it is one of ours."""
        if not (
            isinstance(state, StateTaskServiceCallback)
            and state.resource.condition == ResourceCondition.WaitForTaskToken
            and state.heartbeat is None  # heartbeats keep moto's own timing
            and env.is_running()
            and not env.is_mocked_mode()
        ):
            return None
        task = env.states.context_object.context_object_data.get("Task") or {}
        return env.callback_pool_manager.get(task.get("Token"))

    def one_deadline_an_attempt(run_attempt: Callable[..., Any]) -> Callable[..., Any]:
        def evaluate_with_timeout(state: Any, env: Any) -> None:
            endpoint = token_of_attempt(state, env)
            if endpoint is None:
                return run_attempt(state, env)
            state.timeout.eval(env=env)
            deadline = _Deadline(time.monotonic() + env.stack.pop())
            with _token_lock:
                _deadlines[endpoint] = deadline  # a retried attempt gets a new one
            return run_attempt(_OuterTimerOff(state, never), env)

        return evaluate_with_timeout

    def wait_until_the_deadline(wait_for_token: Callable[..., Any]) -> Callable[..., Any]:
        def wait_for_token_until_deadline(state: Any, timeout_seconds: int, endpoint: Any) -> Any:
            with _token_lock:
                deadline = _deadlines.get(endpoint)
            if deadline is None:
                return wait_for_token(state, timeout_seconds, endpoint)
            endpoint.wait(timeout=max(0.0, deadline.at - time.monotonic()))
            with _token_lock:
                outcome = endpoint.get_outcome()
                if outcome is None:
                    deadline.passed = True  # from now on every answer is TaskTimedOut
            return outcome  # None: moto raises States.Timeout for the task

        return wait_for_token_until_deadline

    replace(ExecutionState, "_evaluate_with_timeout", one_deadline_an_attempt)
    replace(StateTaskServiceCallback, "_wait_for_task_token_timeout", wait_until_the_deadline)


def parse_each_definition_once() -> None:
    """moto parses a definition with its ASL grammar on every CreateStateMachine,
    only to validate it, and again for every execution: ~0.2-0.35 s of CPU
    each for ours, which the tests pay for every machine they make and every
    onboarding they run. A definition valid once is valid again, and an
    execution may start from a copy of the tree parsed the first time (a
    pristine tree: executions keep their state in their own environment, and
    each gets its own copy anyway). Invalid definitions are parsed, and
    refused, every time."""
    import copy

    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    validated: dict[str, bool] = {}
    parsed: dict[str, Any] = {}

    def remember(cache: dict[str, Any], definition: str, value: Any) -> None:
        with _client_lock:
            if len(cache) > 200:  # bounded: a long make run sees a few definitions
                cache.clear()
            cache[definition] = value

    def validating_once(moto_own: Any) -> Any:
        check = moto_own.__func__ if isinstance(moto_own, staticmethod) else moto_own

        def validate_definition(definition: str) -> None:
            if definition not in validated:
                check(definition)
                remember(validated, definition, True)

        return staticmethod(validate_definition)

    def parsing_once(moto_own: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def evaluation_entrypoint(worker: Any) -> Any:
            definition = worker._evaluation_details.state_machine_details.definition
            pristine = parsed.get(definition)
            if pristine is None:
                pristine = moto_own(worker)
                remember(parsed, definition, copy.deepcopy(pristine))
                return pristine
            return copy.deepcopy(pristine)

        return evaluation_entrypoint

    replace(StepFunctionsParserBackend, "_validate_definition", validating_once)
    replace(ExecutionWorker, "_get_evaluation_entrypoint", parsing_once)


def behave_like_aws(enforce_ses_quotas: bool) -> None:
    """Where moto is more permissive than AWS, answer as AWS does (docs/local-stack.md, "How
    the local stack differs from AWS"): spent task tokens, SES contact lists and
    their quotas, atomic conditional writes, StopExecution. The local stack and
    the workflow tests both run on this; each patch is applied once. Also what moto
    lacks: a rule's SNS target, SNS's email (sns.py)."""
    from scripts.local.dynamodb import make_conditional_writes_atomic
    from scripts.local.executions import stop_executions_like_aws
    from scripts.local.ses import reproduce_ses_contact_lists
    from scripts.local.sns import notify_admins_like_aws

    check_moto_version()
    reuse_lambda_clients_of_the_engine()
    parse_each_definition_once()
    answer_spent_task_tokens_like_aws()
    reproduce_ses_contact_lists(enforce_quotas=enforce_ses_quotas)
    make_conditional_writes_atomic()
    stop_executions_like_aws()
    notify_admins_like_aws()


def answer_spent_task_tokens_like_aws() -> None:
    """AWS answers TaskTimedOut for a task token that was already answered or
    whose task timed out, also once its execution has ended. moto accepts the
    second answer while the execution runs and calls the token invalid after.
    Patched here (moto is pinned) so a double approval gets AWS's answer, and
    an answer racing the task's timeout either wins or gets TaskTimedOut
    (``end_token_waits_like_aws``).
    """
    from moto.stepfunctions.parser.api import ExecutionStatus, TaskTimedOut
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    end_token_waits_like_aws()

    def spent(backend: Any, token: str) -> bool:
        for execution in backend._get_executions():
            worker = execution.exec_worker
            endpoint = worker.env.callback_pool_manager.get(token) if worker else None
            if endpoint is not None:
                return (
                    execution.status != ExecutionStatus.RUNNING
                    or endpoint._outcome is not None
                    or endpoint.consumer_error is not None
                    or _timed_out(endpoint)
                )
        return False

    def guarded(original: Callable) -> Callable:
        def answer(backend: Any, task_token: str, *args: Any, **kwargs: Any) -> Any:
            with _token_lock:  # two admins at once, or an admin and the timeout: one wins
                if spent(backend, task_token):
                    raise TaskTimedOut(
                        "Task Timed Out: 'Provided task does not exist anymore'",
                        "TaskTimedOut",
                    )
                return original(backend, task_token, *args, **kwargs)

        return answer

    replace(StepFunctionsParserBackend, "send_task_success", guarded)
    replace(StepFunctionsParserBackend, "send_task_failure", guarded)


class AwsExtensions:
    """WSGI middleware around moto's app for the calls we must extend."""

    def __init__(
        self,
        app: Callable,
        cognito: Any = None,
        on_events: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._app = app
        self._cognito = cognito  # a LocalCognito, set once the stack has clients
        self._on_events = on_events
        self._user_state_lock = threading.Lock()
        self._lambdas: Any = None  # a LocalLambdas, set once the app is loaded

    def attach_cognito(self, cognito: Any) -> None:
        self._cognito = cognito

    def attach_lambdas(self, lambdas: Any) -> None:
        """Answer lambda:Invoke over HTTP (aws lambda invoke, make admin) in process."""
        self._lambdas = lambdas

    def __call__(self, environ: dict[str, Any], start_response: Callable):
        from scripts.local import sns

        if environ.get("PATH_INFO") == sns.CONFIRMATION_PATH and environ.get("REQUEST_METHOD") == "GET":
            return self._confirm_subscription(environ, start_response)
        invoked = _INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if invoked and self._lambdas is not None and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke_lambda(unquote(invoked.group(1)), environ, start_response)
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
                if environ.get("HTTP_ORIGIN"):  # a browser (the sign-up page) reads it too
                    headers = _with_cors(headers)
            else:
                status, headers, body = self._call_moto(environ)
                if status.startswith("200"):
                    self._tap_events(request, body)
        except CognitoError as error:
            status, headers, body = _json_error(error.code, error.message)
            if environ.get("HTTP_ORIGIN"):
                headers = _with_cors(headers)
        start_response(status, headers)
        return [body]

    def _call_cognito(self, operation: str, request: dict[str, Any], environ: dict[str, Any]):
        """moto's answer, with what LocalCognito adds before and after it."""
        from scripts.local.cognito import CHANGES_USER_STATE

        exclusive = operation in CHANGES_USER_STATE
        with self._user_state_lock if exclusive else contextlib.nullcontext():
            forwarded = self._cognito.before(operation, request)
            own = self._cognito.answer(operation, forwarded)  # what moto lacks
            if own is not None:
                return _json_answer(own)
            if forwarded != request:
                raw = json.dumps(forwarded).encode()
                environ["wsgi.input"] = io.BytesIO(raw)
                environ["CONTENT_LENGTH"] = str(len(raw))
            status, headers, body = self._call_moto(environ)
        if status.startswith("200"):
            self._cognito.after(operation, forwarded)
            body = self._cognito.amend(operation, forwarded, body)
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v)
                       for k, v in headers]
        return status, headers, body

    def _confirm_subscription(self, environ: dict[str, Any], start_response: Callable):
        """The page an SNS confirmation link opens: the subscription is confirmed."""
        from urllib.parse import parse_qs

        from scripts.local import sns

        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            subscription = sns.confirm(query.get("TopicArn", ""), query.get("Token", ""))
            status = "200 OK"
            text = (f"Subscription confirmed: {subscription.endpoint} now receives the messages "
                    f"of {subscription.topic.arn}.\n")
        except sns.ConfirmationError:
            status, text = "400 Bad Request", "This confirmation link is not valid.\n"
        body = text.encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body))),
                                ("X-Content-Type-Options", "nosniff")])
        return [body]

    def _invoke_lambda(self, function: str, environ: dict[str, Any], start_response: Callable):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        answer = self._lambdas.dispatch(function, payload, environ.get("HTTP_X_AMZ_INVOCATION_TYPE"))
        if answer is None:
            start_response("202 Accepted", [("Content-Length", "0")])
            return [b""]
        error, body = answer
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                   ("X-Amz-Executed-Version", "$LATEST")]
        if error:
            headers.append(("X-Amz-Function-Error", error))
        start_response("200 OK", headers)
        return [body]

    def _call_moto(self, environ: dict[str, Any]):
        captured: dict[str, Any] = {}

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

    def _tap_events(self, request: dict[str, Any], body: bytes) -> None:
        if self._on_events is None:
            return
        try:
            results = json.loads(body).get("Entries", [])
        except ValueError:
            return
        accepted = []
        for entry, result in zip(request.get("Entries", []), results, strict=False):
            if result.get("EventId"):
                accepted.append({**entry, "EventId": result["EventId"]})
        if accepted:
            self._on_events(accepted)


def _with_cors(headers: list[Any]) -> list[Any]:
    """What moto's own answers carry (flask-cors): any origin may read them."""
    if any(k.lower() == "access-control-allow-origin" for k, _ in headers):
        return headers
    return headers + [("Access-Control-Allow-Origin", "*")]


def _json_answer(answer: dict[str, Any]):
    body = json.dumps(answer).encode()
    return "200 OK", [("Content-Type", "application/x-amz-json-1.1"),
                      ("Content-Length", str(len(body)))], body


def _json_error(code: str, message: str):
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("Content-Length", str(len(body))),
        ("x-amzn-ErrorType", code),
    ]
    return "400 Bad Request", headers, body


class LocalAwsServer:
    """moto's server app, extended, on 127.0.0.1 in a background thread.

    moto's ThreadedMotoServer serves moto's app as it is; this one serves it
    behind AwsExtensions (Cognito, Lambda invocations, the event tap), so it
    builds the same werkzeug server around that middleware.
    """

    def __init__(self, port: int, extensions_factory: Callable[[Callable], AwsExtensions]):
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        remember_backends_by_host()
        self.extensions = extensions_factory(DomainDispatcherApplication(create_backend_app))
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
        # moto's public configuration: its Step Functions engine runs definitions
        import requests

        requests.post(f"{self.endpoint}/moto-api/config", timeout=10,
                      json={"stepfunctions": {"execute_state_machine": True}}).raise_for_status()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
