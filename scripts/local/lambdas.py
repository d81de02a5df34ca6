"""Runs the Chalice app's Lambda functions in this process, as Lambda would.

moto's Lambda needs Docker, which this machine does not have. Instead every
``lambda:Invoke`` made through boto3 in this process (moto's Step Functions
engine makes its Task calls that way, and so does the local Cognito trigger)
is answered here by calling the app's own handler: JSON in, JSON out, an
unhandled exception reported as ``FunctionError: Unhandled`` with its class
name as ``errorType``, exactly the shape Step Functions retries and catches
on.
"""
import io
import json
import logging
import threading
import time
import traceback
import uuid
from typing import Any
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.response import StreamingBody

from chalicelib import dependencies as deps
from chalicelib.errors import SignUpRefused

logger = logging.getLogger("local.lambda")
API_FUNCTION = "api_handler"  # the function chalice package makes of the routes


class LocalContext:
    """The attributes of Lambda's context object that handlers may read."""

    def __init__(self, function_name: str, arn: str, timeout_ms: int) -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000.0
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalLambdas:
    """Maps deployed function names of one stage to the app's handlers."""

    def __init__(
        self, chalice_app: Any, function_names: dict[str, str], timeout_ms: int = 60_000
    ) -> None:
        """``function_names``: Chalice function name -> the stage's deployed name."""
        self._names = dict(function_names)
        self._chalice_names = {deployed: name for name, deployed in function_names.items()}
        # Chalice's own map of every handler it declares (chalice.test finds
        # them there too): the Lambda functions and the scheduled ones
        self._handlers = {
            deployed: chalice_app.handler_map[name]
            for name, deployed in function_names.items()
            if name in chalice_app.handler_map
        }
        self._timeout_ms = timeout_ms
        run_each_function_within_its_own(chalice_app)
        self.invocations: dict[str, int] = {}
        self._running = 0  # invocations under way, in any thread
        self._idle = threading.Condition()

    def wait_until_idle(self, seconds: float) -> bool:
        """Until no invocation is under way (False if one still is after ``seconds``)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout=seconds)

    @property
    def function_names(self):
        return sorted(self._handlers)

    def invoke(self, function: str, payload: bytes) -> tuple[str | None, bytes]:
        """Returns (FunctionError or None, response payload bytes)."""
        name = function.rsplit(":function:", 1)[-1].split(":")[0]
        handler = self._handlers.get(name)
        if handler is None:
            body = {
                "errorType": "ResourceNotFoundException",
                "errorMessage": f"Function not found: {function}",
            }
            return "Unhandled", json.dumps(body).encode()
        with self._idle:
            self.invocations[name] = self.invocations.get(name, 0) + 1
            self._running += 1
        try:
            return self._run(handler, name, function, payload)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _run(self, handler: Any, name: str, function: str, payload: bytes) -> tuple[str | None, bytes]:
        context = LocalContext(name, function, self._timeout_ms)
        try:
            event = json.loads(payload or b"{}")
            with deps.within(self._chalice_names.get(name, name)):
                result = handler(event, context)
            return None, json.dumps(result).encode()
        except Exception as error:  # Lambda reports every unhandled exception
            if isinstance(error, SignUpRefused):  # the trigger's answer, not a fault
                logger.info("%s refused the sign-up: %s", name, error)
            else:
                logger.warning("%s failed: %s: %s\n%s", name, type(error).__name__, error,
                               traceback.format_exc())
            body = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return "Unhandled", json.dumps(body).encode()

    def invoke_json(self, name: str, event: Any) -> Any:
        """Call a function by its Chalice name (or deployed name); its result, or raise."""
        error, payload = self.invoke(self._names.get(name, name), json.dumps(event).encode())
        result = json.loads(payload or b"null")
        if error:
            raise RuntimeError(f"{name} failed: {result.get('errorType')}: {result.get('errorMessage')}")
        return result

    # --- botocore hook --------------------------------------------------------
    def install(self, session: Any) -> None:
        """Answer lambda:Invoke for clients of this boto3 session (before HTTP)."""
        session.events.register("before-call.lambda.Invoke", self._on_invoke)

    def uninstall(self, session: Any) -> None:
        session.events.unregister("before-call.lambda.Invoke", self._on_invoke)

    def dispatch(self, function: str, payload: bytes, invocation_type: str | None):
        """Invoke as Lambda does for the invocation type: an ``Event`` runs on a
        thread of its own (None: accepted); otherwise (function error, payload)."""
        if invocation_type == "Event":
            threading.Thread(target=self.invoke, args=(function, payload), daemon=True).start()
            return None
        return self.invoke(function, payload)

    def _on_invoke(self, params: dict[str, Any], **_: Any):
        # params is the serialized request: /2015-03-31/functions/{name}/invocations
        function = unquote(params["url_path"].split("/")[3])
        body = params.get("body") or b""
        if isinstance(body, str):
            body = body.encode()
        answer = self.dispatch(function, body, (params.get("headers") or {}).get("X-Amz-Invocation-Type"))
        if answer is None:
            return AWSResponse("", 202, HTTPHeaders(), None), {"StatusCode": 202, "Payload": _stream(b"")}
        error, payload = answer
        parsed = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": _stream(payload)}
        if error:
            parsed["FunctionError"] = error
        return AWSResponse("", 200, HTTPHeaders(), None), parsed


def run_each_function_within_its_own(chalice_app: Any) -> None:
    """Every route runs ``within("api_handler")``, and a handler called directly
    (chalice.test's ``lambda_.invoke``) within its own name, as the invocations
    above do: in Lambda each function has containers, and clients, of its own.
    A Chalice middleware, registered once on the app; app.py knows nothing of it."""
    if getattr(chalice_app, "_runs_within_functions", False):
        return
    from chalice.app import EventSourceHandler, Request

    def within_its_function(event: Any, get_response: Any) -> Any:
        if deps.current_function():  # an invocation above: already within it
            return get_response(event)
        if isinstance(event, Request):
            name = API_FUNCTION
        else:
            name = getattr(getattr(event, "context", None), "function_name", "")
        if name not in chalice_app.handler_map and name != API_FUNCTION:
            return get_response(event)
        with deps.within(name):
            return get_response(event)

    chalice_app.register_middleware(within_its_function, "all")
    chalice_app._runs_within_functions = True
    # a handler called before now built its middleware chain without this one
    for handler in chalice_app.handler_map.values():
        if isinstance(handler, EventSourceHandler):
            handler.handler = None


def scheduled_event(region: str = "us-east-1", account: str = "123456789012") -> dict[str, Any]:
    """What an EventBridge schedule rule hands the function it targets (aws.events)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/local-schedule"],
        "detail": {},
    }


def _stream(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))
