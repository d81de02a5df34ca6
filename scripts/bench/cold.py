"""Cold starts and trigger latency of the app's Lambda entry points (for bench.py).

A cold start here is the wall time of a fresh Python process, as Lambda
starts one for a new container: it imports ``app`` and handles one
representative event against the local AWS (and localstripe, for the Stripe
task). Its baseline is a fresh process of a function that ships nothing
(boto3 and its dependencies from the runtime alone) that imports boto3 and
makes the same AWS calls with plain ``boto3.client`` calls, nothing else (and,
for the Stripe task, the same Stripe request with urllib).

Nothing here is written by hand per handler, so the bench follows the app as
it changes:
- the task events are the Lambda inputs of a real execution of
  statemachine.json on the local stack (its history), with fresh tenants;
  the trigger's is tests/events/post_confirmation.json; the API's is an API
  Gateway proxy event for ``POST /tenant/finalize`` with a real task token;
- the baseline's calls are recorded from the app's own handler (every boto3
  API call and Stripe HTTP request it made, in order) in an untimed pass, and
  replayed for another fresh tenant.
The tasks run in state machine order, one fresh process each, so each finds
the record the previous one left, as in a real execution.

The API handler is called as Lambda calls it: ``app.app(event, context)``, so
Chalice's routing, request object and error handling run as behind API
Gateway; ``chalice local`` would add a web server that Lambda does not have.
"""
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from scripts.deploy.template import NO_VALUE, Resolver
from scripts.local.stack import FAKE_AWS_ENVIRONMENT
from scripts.shared import PROJECT_DIR

REGION = "us-east-1"
ACCOUNT = "123456789012"
EVENTS_DIR = PROJECT_DIR / "tests" / "events"
TRIGGER = "post_confirmation"
API = "finalize_onboarding"
STRIPE_ENTRY = "create_stripe_customer"
TARGETS = {STRIPE_ENTRY: 1.5}
DEFAULT_TARGET = 1.15
TOKEN = "@@TASK_TOKEN@@"

# --- the fresh processes ---------------------------------------------------------
# Both timed processes count the time their full (generation 2) garbage
# collections take: where one runs and the other not, that is part of the gap.
GC_WATCH = """
import gc, time
full_gc = {"ms": 0.0, "count": 0}
def _watch(phase, info, _began=[0.0]):
    if phase == "start":
        _began[0] = time.perf_counter()
    elif info["generation"] == 2:
        full_gc["ms"] += (time.perf_counter() - _began[0]) * 1000
        full_gc["count"] += 1
gc.callbacks.append(_watch)
"""

# The timed app process: import app, one handler call, one line of JSON out.
APP_CHILD = GC_WATCH + """
import json, sys
spec = json.loads(sys.argv[1])
import app
handler = app.app if spec["handler"] == "app" else getattr(app, spec["handler"])
result = handler(spec["event"], None)
print(json.dumps({"result": result, "stripe": "stripe" in sys.modules, "fullGc": full_gc},
                 default=str))
"""

# The timed baseline: boto3 and the recorded calls, the Stripe request with urllib.
REPLAY_CHILD = GC_WATCH + """
import json, sys
spec = json.loads(sys.argv[1])
import boto3
from botocore import xform_name
clients, responses = {}, []
for call in spec["calls"]:
    if call["kind"] == "aws":
        if call["service"] not in clients:
            clients[call["service"]] = boto3.client(call["service"])
        try:
            getattr(clients[call["service"]], xform_name(call["operation"]))(**call["params"])
        except Exception:
            if not call["error"]:
                raise
    else:
        import urllib.error, urllib.request
        data = call["data"].encode() if call["data"] is not None else None
        request = urllib.request.Request(call["url"], data=data, headers=call["headers"],
                                         method=call["method"])
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                responses.append(response.read().decode())
        except urllib.error.HTTPError as error:
            if not call["error"]:
                raise
            responses.append(error.read().decode())
print(json.dumps({"responses": responses, "stripe": "stripe" in sys.modules, "fullGc": full_gc}))
"""

# Untimed: the app's handler with every boto3 call and Stripe request recorded.
RECORD_CHILD = """
import json, sys
spec = json.loads(sys.argv[1])
calls = []
import botocore.client
_api_call = botocore.client.BaseClient._make_api_call
def _recording_api_call(self, operation, params):
    entry = {"kind": "aws", "service": self.meta.service_model.service_name,
             "operation": operation, "params": params, "error": None}
    calls.append(entry)
    try:
        return _api_call(self, operation, params)
    except Exception as error:
        entry["error"] = type(error).__name__
        raise
botocore.client.BaseClient._make_api_call = _recording_api_call
try:
    import requests.sessions
    _request = requests.sessions.Session.request
    def _recording_request(self, method, url, **kwargs):
        data = kwargs.get("data")
        entry = {"kind": "http", "method": method.upper(), "url": url,
                 "headers": {k: v for k, v in (kwargs.get("headers") or {}).items()
                             if k.lower() not in ("content-length", "accept-encoding")},
                 "data": data.decode() if isinstance(data, bytes) else data, "error": None}
        calls.append(entry)
        response = _request(self, method, url, **kwargs)
        entry["response"] = response.text
        entry["error"] = response.status_code >= 400 or None
        return response
    requests.sessions.Session.request = _recording_request
except ImportError:
    pass
import app
handler = app.app if spec["handler"] == "app" else getattr(app, spec["handler"])
result = handler(spec["event"], None)
print(json.dumps({"result": result, "calls": calls}, default=str))
"""

# Warm calls of the trigger in one process, each followed by a plain
# StartExecution at the same pace; the first of each is the cold one.
TRIGGER_CHILD = """
import json, sys, time
spec = json.loads(sys.stdin.read())
import app
import boto3
sfn = boto3.client("stepfunctions")
times = {"handler": [], "raw": []}

def paced(kind, call):
    began = time.perf_counter()
    call()
    took = time.perf_counter() - began
    times[kind].append(took)
    if spec["interval"] > took:
        time.sleep(spec["interval"] - took)

for event, raw in zip(spec["events"], spec["raw"]):
    paced("handler", lambda: app.post_confirmation(event, None))
    paced("raw", lambda: sfn.start_execution(**raw))
print(json.dumps(times))
"""

# Calls that leave the local engine work (an execution to run to its wait, or
# to its end): pause after them so the next process does not pay for it.
SETTLE_SECONDS = {TRIGGER: 0.4, API: 0.4}


class Functions:
    """The built template's functions as the local stack's stage would deploy them:
    each one's handler, deployed name and environment.

    A function's variables are its own in the template (SAM's Globals, then the
    function's); each value is the one the local stack resolved for its stage
    (``functionEnvironment`` in its stack.json) when it has that variable, else
    the template's value with its intrinsic functions resolved here against
    the stack's outputs.
    """

    def __init__(self, template: dict[str, Any], outputs: dict[str, Any]) -> None:
        resources = template["Resources"]
        stack_env: dict[str, str] = outputs.get("functionEnvironment") or {}

        def physical(logical_id: str, attribute: str | None) -> str:
            # A Ref / Fn::GetAtt of the template's resources on the local stack, by
            # resource type: the stack's outputs name them.
            kind = resources.get(logical_id, {}).get("Type")
            known = {
                ("AWS::DynamoDB::Table", None): outputs.get("tableName"),
                ("AWS::Events::EventBus", None): outputs.get("eventBusName"),
                ("AWS::Events::EventBus", "Name"): outputs.get("eventBusName"),
                ("AWS::StepFunctions::StateMachine", None): outputs.get("stateMachineArn"),
                ("AWS::StepFunctions::StateMachine", "Arn"): outputs.get("stateMachineArn"),
                ("AWS::Cognito::UserPool", None): outputs.get("userPoolId"),
            }.get((kind, attribute))
            if known is None:
                raise RuntimeError(
                    f"the bench cannot resolve {logical_id}{'.' + attribute if attribute else ''}"
                    f" ({kind}) for a function's environment, and the local stack's "
                    f"functionEnvironment does not give that variable")
            return known

        parameters = {"Stage": outputs.get("stage", "local"),
                      "Stripe": "on" if outputs.get("stripe") else "off"}
        if outputs.get("contactListMode"):
            parameters["ContactListMode"] = outputs["contactListMode"]
        resolver = Resolver(template, parameters, REGION, ACCOUNT, physical)

        def resolved(variables: dict[str, Any]) -> dict[str, str]:
            out = {}
            for name, value in variables.items():
                if name in stack_env:
                    out[name] = str(stack_env[name])
                    continue
                value = resolver.resolve(value)
                if value is not NO_VALUE:
                    out[name] = str(value)
            return out

        common = template.get("Globals", {}).get("Function", {}).get("Environment", {})
        common = resolved(common.get("Variables", {}))
        self.environment: dict[str, dict[str, str]] = {}  # handler -> variables
        self.handler_of: dict[str, str] = {}  # deployed function name -> handler
        # handler -> Timeout (s): lambda_timeout in .chalice/config.json, as packaged
        self.timeout_seconds: dict[str, int] = {}
        default_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        for spec in resources.values():
            if spec.get("Type") != "AWS::Serverless::Function":
                continue
            properties = spec["Properties"]
            # "app.create_tenant_record" -> create_tenant_record; "app.app" (the API) -> app
            handler = properties["Handler"].split(".", 1)[1]
            own = resolved(properties.get("Environment", {}).get("Variables", {}))
            self.environment[handler] = {**common, **own}
            self.timeout_seconds[handler] = int(properties.get("Timeout") or default_timeout)
            if "FunctionName" in properties:
                self.handler_of[str(resolver.resolve(properties["FunctionName"]))] = handler

    def handler(self, function: str) -> str:
        """The handler of a function named by its name or ARN in a state machine."""
        name = function.rsplit(":function:", 1)[-1].split(":")[0]
        if name in self.handler_of:
            return self.handler_of[name]
        # a name the template does not give: Chalice's <app>-<stage>-<function>
        matches = [h for h in self.environment if name.endswith(f"-{h}")]
        if not matches:
            raise RuntimeError(f"no function of the built template is named {name}")
        return max(matches, key=len)


def child_environment(outputs: dict[str, Any], layout: Any, variables: dict[str, str],
                      baseline: bool = False) -> dict[str, str]:
    """What a Lambda container of the function has (``variables``, from the built
    template), pointed at the local stack; for the baseline, a function that ships
    nothing (boto3 from the runtime only)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "AWS_ENDPOINT_URL": outputs["awsEndpoint"],
        **FAKE_AWS_ENVIRONMENT,
        "AWS_EC2_METADATA_DISABLED": "true",
        # what the Lambda runtime sets in every container (the app reads the first)
        "AWS_LAMBDA_FUNCTION_NAME": "tenant-onboarding-bench",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        **variables,
        **(layout.baseline_env() if baseline else layout.env()),
    }
    if outputs.get("stripeApiBase"):
        env["STRIPE_API_BASE"] = outputs["stripeApiBase"]  # local only: localstripe
    return env


def run_child(code: str, spec: Any, env: dict[str, str], layout: Any,
              cwd: Path | None = None, preexec: Callable[[], None] | None = None,
              ) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one fresh interpreter running ``code``, and what it printed;
    ``preexec`` runs in the child before it starts Python (to join a CPU share)."""
    argv = layout.python() + ["-c", code, json.dumps(spec)]
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd or layout.cwd, env=env, capture_output=True, text=True,
                          preexec_fn=preexec)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"a cold-start process failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


# --- substituting one tenant for another -------------------------------------------
def fresh_tenant() -> dict[str, str]:
    tenant_id = str(uuid.uuid4())
    return {"tenantId": tenant_id, "email": f"bench-{tenant_id[:13]}@example.com",
            "name": f"Bench {tenant_id[:13]}"}


def identity(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for key in ("name", "email", "tenantId"):  # the name may hold the email
        mapping[old[key]] = new[key]
    return mapping


def substitute(value: Any, mapping: dict[str, str]) -> Any:
    """``value`` with every mapped string replaced, also inside JSON and form strings."""
    text = json.dumps(value)
    pairs = []
    for old, new in mapping.items():
        pairs += [(old, new), (quote_plus(old), quote_plus(new)), (quote(old), quote(new))]
    for old, new in sorted(set(pairs), key=lambda p: -len(p[0])):
        if old:
            text = text.replace(old, new)
    return json.loads(text)


def learn(recorded: Any, actual: Any, mapping: dict[str, str]) -> None:
    """Map the recorded run's generated values (customer ids...) to this run's."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        for key in recorded.keys() & actual.keys():
            learn(recorded[key], actual[key], mapping)
    elif isinstance(recorded, list) and isinstance(actual, list):
        for r, a in zip(recorded, actual, strict=False):
            learn(r, a, mapping)
    elif isinstance(recorded, str) and isinstance(actual, str):
        if recorded != actual and len(recorded) >= 8 and recorded not in mapping:
            mapping[recorded] = actual


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


# --- what a real execution gave each task -------------------------------------------
def tasks_from_history(events: list[dict[str, Any]], functions: Functions,
                       ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The execution's tenant, and each Lambda task in order: handler, input, output."""
    started = next(e for e in events if e["type"] == "ExecutionStarted")
    tenant = json.loads(started["executionStartedEventDetails"]["input"])["tenant"]
    tasks: list[dict[str, Any]] = []
    seen = set()
    for n, event in enumerate(events):
        if event["type"] == "LambdaFunctionScheduled":
            details = event["lambdaFunctionScheduledEventDetails"]
            handler = functions.handler(details["resource"])
            task_input = json.loads(details["input"])
            output = next(
                (json.loads(e["lambdaFunctionSucceededEventDetails"].get("output") or "null")
                 for e in events[n + 1:] if e["type"] == "LambdaFunctionSucceeded"), None)
        elif (event["type"] == "TaskScheduled"
              and event["taskScheduledEventDetails"].get("resourceType") == "lambda"):
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            handler = functions.handler(parameters["FunctionName"])
            task_input, output = parameters["Payload"], None
        else:
            continue
        if handler not in seen:  # a retried task: its first input is the one
            seen.add(handler)
            tasks.append({"handler": handler, "event": task_input, "output": output})
    return tenant, tasks


def waiting_executions(load: Any, count: int) -> list[str]:
    """The task tokens of ``count`` executions waiting for a decision, through
    real sign-ups (``load``: a scripts.bench.load.LoadRun on the stack)."""
    run = uuid.uuid4().hex[:6]
    emails = [f"bench-cold-{run}-{n}@example.com" for n in range(count)]
    with ThreadPoolExecutor(8) as pool:
        tenants = list(pool.map(load.sign_up, emails))
        list(pool.map(lambda t: load.await_token(t, 60), tenants))
    if any("token" not in t for t in tenants):
        raise RuntimeError("bench sign-ups never reached the wait for a decision")
    return [t["token"] for t in tenants]


def tokens_needed(runs: int) -> int:
    """Waiting executions the cold starts use: two per API run (app and
    baseline), and one for the recording pass."""
    return 2 * runs + 1


def admin_request(method: str, path: str, query: dict[str, str] | None = None,
                  body: Any = None) -> dict[str, Any]:
    """API Gateway's proxy event for an admin's request to the API (``path`` a
    route without path parameters), as its Cognito authorizer passes it on."""
    headers = {"Host": "example.execute-api"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return {
        "resource": path, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {
            "resourcePath": path, "httpMethod": method,
            "path": f"/api{path}", "stage": "api", "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1",
                         "userArn": f"arn:aws:iam::{ACCOUNT}:user/bench-admin"},
            # what API Gateway's Cognito authorizer passes on (an admin's ID token)
            "authorizer": {"claims": {"email": "bench-admin@example.com",
                                      "cognito:username": "bench-admin@example.com"}},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class Entries:
    """Per run, the app event and the baseline calls of every entry point."""

    def __init__(self, outputs: dict[str, Any], state_dir: Path, history: list[dict[str, Any]],
                 layout: Any, template: dict[str, Any], tokens: list[str] | None = None,
                 ) -> None:
        import boto3

        from scripts.bench.load import LoadRun

        self.outputs = outputs
        self.functions = Functions(template, outputs)
        self.use_layout(layout)
        self.load = LoadRun(outputs, state_dir, workers=8)
        self.history_tenant, self.tasks = tasks_from_history(history, self.functions)
        self.history_token = next(
            (t["event"].get("taskToken") for t in self.tasks if "taskToken" in t["event"]), None)
        self.sample = json.loads((EVENTS_DIR / "post_confirmation.json").read_text())
        attributes = self.sample["request"]["userAttributes"]
        self.sample_tenant = {"tenantId": attributes["sub"], "email": attributes["email"],
                              "name": attributes["name"]}
        self.sample["userPoolId"] = outputs["userPoolId"]
        self.tokens: list[str] = list(tokens or [])
        self.session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)
        self._clients: dict[str, Any] = {}

    def use_layout(self, layout: Any) -> None:
        self.layout = layout

    def env(self, handler: str, baseline: bool = False) -> dict[str, str]:
        """The environment of ``handler``'s function ("app": the API's)."""
        return child_environment(self.outputs, self.layout,
                                 self.functions.environment[handler], baseline)

    @property
    def chain(self) -> list[str]:
        return [t["handler"] for t in self.tasks]

    def prepare_tokens(self, count: int) -> None:
        self.tokens += waiting_executions(self.load, count)

    # --- app events ------------------------------------------------------------------
    def trigger_event(self, tenant: dict[str, str]) -> dict[str, Any]:
        return substitute(self.sample, identity(self.sample_tenant, tenant))

    def api_event(self, token: str) -> dict[str, Any]:
        return admin_request("POST", "/tenant/finalize",
                             body={"taskToken": token, "status": "approved"})

    def chain_mapping(self, tenant: dict[str, str]) -> dict[str, str]:
        mapping = identity(self.history_tenant, tenant)
        if self.history_token:
            mapping[self.history_token] = str(uuid.uuid4())
        return mapping

    # --- the recording pass --------------------------------------------------------------
    def record(self) -> None:
        """The app's own calls for each entry point, for the baselines to replay."""
        self.recorded: dict[str, dict[str, Any]] = {}
        tenant = fresh_tenant()
        self.recorded[TRIGGER] = self._record(TRIGGER, self.trigger_event(tenant), tenant)
        tenant = fresh_tenant()
        mapping = self.chain_mapping(tenant)
        for task in self.tasks:
            recording = self._record(task["handler"], substitute(task["event"], mapping), tenant)
            learn(substitute(task["output"], mapping), recording["result"], mapping)
            recording["tokenFor"] = mapping.get(self.history_token) if self.history_token else None
            self.recorded[task["handler"]] = recording
        if not self.tokens:
            self.prepare_tokens(1)
        token = self.tokens.pop()
        recording = self._record("app", self.api_event(token), {"token": token})
        if (recording["result"] or {}).get("statusCode") != 200:
            raise RuntimeError(f"the API handler answered {recording['result']}")
        self.recorded[API] = recording

    def _record(self, handler: str, event: Any, subject: dict[str, str]) -> dict[str, Any]:
        _, printed = run_child(RECORD_CHILD, {"handler": handler, "event": event},
                               self.env(handler), self.layout)
        return {"subject": subject, "calls": printed["calls"], "result": printed["result"]}

    def baseline_calls(self, handler: str, mapping: dict[str, str]) -> list[dict[str, Any]]:
        return substitute(self.recorded[handler]["calls"], mapping)

    def replay_here(self, handler: str, mapping: dict[str, str]) -> None:
        """Replay a task's recorded AWS calls from this process (to set up state)."""
        from botocore import xform_name

        for call in self.baseline_calls(handler, mapping):
            if call["kind"] != "aws":
                continue
            if call["service"] not in self._clients:
                self._clients[call["service"]] = self.session.client(
                    call["service"], endpoint_url=self.outputs["awsEndpoint"])
            try:
                getattr(self._clients[call["service"]], xform_name(call["operation"]))(
                    **call["params"])
            except Exception:
                if not call["error"]:
                    raise


def _median(values: list[float]) -> float:
    return statistics.median(values)


class ColdStarts:
    """Timed pairs (app, baseline), alternating who goes first, run after run."""

    def __init__(self, entries: Entries, warm_up: bool = True) -> None:
        """``warm_up``: run 0 is a warm-up, not kept."""
        self.entries = entries
        self.first_kept = 1 if warm_up else 0
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.full_gc: dict[str, dict[str, list[float]]] = {}  # ms per process
        self.stripe_loaded: dict[str, bool] = {}

    def pair(self, run: int, handler: str, app_handler: str, event: Any,
             calls: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        e = self.entries
        order = [("app", APP_CHILD, {"handler": app_handler, "event": event}),
                 ("baseline", REPLAY_CHILD, {"calls": calls})]
        if run % 2:
            order.reverse()
        printed: dict[str, dict[str, Any]] = {}
        for kind, code, spec in order:
            if kind == "app":
                wall, printed[kind] = run_child(code, spec, e.env(app_handler), e.layout)
            else:
                wall, printed[kind] = run_child(code, spec, e.env(app_handler, baseline=True),
                                                e.layout, e.layout.baseline_cwd)
            if run >= self.first_kept:
                self.samples.setdefault(handler, {"app": [], "baseline": []})[kind].append(wall)
                self.full_gc.setdefault(handler, {"app": [], "baseline": []})[kind].append(
                    printed[kind]["fullGc"]["ms"])
            time.sleep(SETTLE_SECONDS.get(handler, 0))
        self.stripe_loaded[handler] = (self.stripe_loaded.get(handler, False)
                                       or printed["app"]["stripe"])
        return printed["app"], printed["baseline"]

    def one_run(self, run: int) -> None:
        e = self.entries
        # the trigger
        tenant, base = fresh_tenant(), fresh_tenant()
        recorded = e.recorded[TRIGGER]
        self.pair(run, TRIGGER, TRIGGER, e.trigger_event(tenant),
                  e.baseline_calls(TRIGGER, identity(recorded["subject"], base)))
        # the tasks, in the order of the execution
        tenant, base = fresh_tenant(), fresh_tenant()
        app_map = e.chain_mapping(tenant)
        base_map = identity(e.recorded[e.chain[0]]["subject"], base)
        for task in e.tasks:
            handler = task["handler"]
            recorded = e.recorded[handler]
            if recorded.get("tokenFor"):
                base_map[recorded["tokenFor"]] = str(uuid.uuid4())
            app_out, base_out = self.pair(run, handler, handler,
                                          substitute(task["event"], app_map),
                                          e.baseline_calls(handler, base_map))
            learn(substitute(task["output"], app_map), app_out["result"], app_map)
            http = [c["response"] for c in recorded["calls"] if c["kind"] == "http"]
            learn([_json(r) for r in http], [_json(r) for r in base_out["responses"]], base_map)
        # the API
        token, base_token = e.tokens.pop(), e.tokens.pop()
        app_out, _ = self.pair(run, API, "app", e.api_event(token),
                               e.baseline_calls(API, {e.recorded[API]["subject"]["token"]:
                                                      base_token}))
        if (app_out["result"] or {}).get("statusCode") != 200:
            raise RuntimeError(f"the API handler answered {app_out['result']}")

    def single(self, run: int, handler: str) -> None:
        """One entry point alone: the Stripe task, the only one compared so."""
        if handler != STRIPE_ENTRY:
            raise ValueError(f"no single run for {handler}")
        self.stripe_only(run)

    def stripe_only(self, run: int) -> None:
        """Only the Stripe task; its record made beforehand, from this process."""
        e = self.entries
        tenant, base = fresh_tenant(), fresh_tenant()
        app_map = e.chain_mapping(tenant)
        base_map = identity(e.recorded[e.chain[0]]["subject"], base)
        first = e.chain[0]
        e.replay_here(first, identity(e.recorded[first]["subject"], tenant))
        e.replay_here(first, base_map)
        task = next(t for t in e.tasks if t["handler"] == STRIPE_ENTRY)
        self.pair(run, STRIPE_ENTRY, STRIPE_ENTRY, substitute(task["event"], app_map),
                  e.baseline_calls(STRIPE_ENTRY, base_map))

    def rows(self, layout: str) -> list[dict[str, Any]]:
        e = self.entries
        rows = []
        for handler, kinds in self.samples.items():
            app_s, base_s = _median(kinds["app"]), _median(kinds["baseline"])
            # each run's app time over the baseline of the same run, then the median
            ratio = _median([a / b for a, b in zip(kinds["app"], kinds["baseline"], strict=True)])
            calls = e.recorded[handler]["calls"]
            described = " + ".join(
                c["operation"] if c["kind"] == "aws"
                else f"{c['method']} {c['url'].split('//', 1)[-1].split('/', 1)[-1]} (urllib)"
                for c in calls) or "import boto3 (no AWS call)"
            label = {TRIGGER: "post_confirmation (trigger)",
                     API: "API: POST /tenant/finalize"}.get(handler, handler)
            target = TARGETS.get(handler, DEFAULT_TARGET)
            rows.append({
                "entry": label, "handler": handler, "baseline": described, "layout": layout,
                "appMs": app_s * 1000, "baselineMs": base_s * 1000, "ratio": ratio,
                "target": target, "met": ratio <= target,
                "stripeImported": self.stripe_loaded.get(handler, False),
                "appFullGcMs": _median(self.full_gc[handler]["app"]),
                "baselineFullGcMs": _median(self.full_gc[handler]["baseline"]),
                "appSamplesMs": [round(s * 1000, 1) for s in kinds["app"]],
                "baselineSamplesMs": [round(s * 1000, 1) for s in kinds["baseline"]],
            })
        return rows


def prepare_cold_starts(
    outputs: dict[str, Any], state_dir: Path, history: list[dict[str, Any]], runs: int,
    layout: Any, template: dict[str, Any], tokens: list[str] | None = None,
) -> Entries:
    """Untimed: the recording pass, and enough waiting executions for the API's
    runs; ``tokens``: ones made beforehand (``waiting_executions``)."""
    entries = Entries(outputs, state_dir, history, layout, template, tokens)
    entries.record()
    missing = tokens_needed(runs) - 1 - len(entries.tokens)
    if missing > 0:
        entries.prepare_tokens(missing)
    return entries


def measure_cold_starts(
    entries: Entries, runs: int, progress: Callable[[str], None] | None = None,
    other_layouts: tuple[tuple[Any, tuple[str, ...]], ...] = (), other_runs: int = 3,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Median cold start per entry point over ``runs``; and some entry points
    again from other layouts, ``other_runs`` runs after a warm-up:
    ((layout, handlers), ...).

    The main layout gets no warm-up run of its own: the recording pass
    (``prepare_cold_starts``) has just run every entry point once, from the same
    layout against the same stack, so the files are cached and the stack has
    served every call the runs make.
    """
    layout = entries.layout
    cold = ColdStarts(entries, warm_up=False)
    for run in range(runs):
        cold.one_run(run)
        if progress:
            progress(f"cold starts ({layout.name}): run {run + 1}/{runs}")
    other_rows: list[dict[str, Any]] = []
    for other_layout, handlers in other_layouts:
        # the Stripe task only: the API's runs would need more waiting executions
        handlers = tuple(h for h in handlers if h in entries.chain)
        other = ColdStarts(entries, warm_up=True)
        # the main layout again, run for run: the comparison holds whatever the
        # machine was doing meanwhile
        same = ColdStarts(entries, warm_up=True)
        for run in range(other_runs + 1):
            for handler in handlers:
                entries.use_layout(other_layout)
                other.single(run, handler)
                entries.use_layout(layout)
                same.single(run, handler)
        reference = {row["handler"]: row for row in same.rows(layout.name)}
        for row in other.rows(other_layout.name):
            other_rows.append({**row, "reference": reference[row["handler"]]})
        if progress:
            progress(f"cold starts ({other_layout.name}, each run beside one from the "
                     f"package): {', '.join(handlers)} done")
    entries.use_layout(layout)
    return cold.rows(layout.name), other_rows


def measure_trigger_latency(
    outputs: dict[str, Any], calls: int, interval: float, layout: Any, template: dict[str, Any],
) -> dict[str, Any]:
    """The post-confirmation handler, warm, ``calls`` times in one process,
    each followed by a plain StartExecution at the same pace (the local
    endpoint's own latency, for comparison)."""
    from scripts.bench.load import percentile

    sample = json.loads((EVENTS_DIR / "post_confirmation.json").read_text())
    attributes = sample["request"]["userAttributes"]
    old = {"tenantId": attributes["sub"], "email": attributes["email"], "name": attributes["name"]}
    events, raw = [], []
    for _ in range(calls + 1):
        tenant, base = fresh_tenant(), fresh_tenant()
        events.append(substitute(sample, identity(old, tenant)))
        raw.append({"stateMachineArn": outputs["stateMachineArn"], "name": base["tenantId"],
                    "input": json.dumps({"tenant": base}, sort_keys=True, separators=(",", ":"))})
    done = subprocess.run(
        layout.python() + ["-c", TRIGGER_CHILD],
        input=json.dumps({"events": events, "raw": raw, "interval": interval}),
        cwd=layout.cwd, capture_output=True, text=True,
        env=child_environment(outputs, layout, Functions(template, outputs).environment[TRIGGER]),
    )
    if done.returncode != 0:
        raise RuntimeError(f"the trigger latency process failed:\n{done.stderr[-3000:]}")
    times = json.loads(done.stdout.strip().splitlines()[-1])
    handler, plain = times["handler"][1:], times["raw"][1:]
    return {
        "calls": len(handler),
        "intervalS": interval,
        "firstCallMs": times["handler"][0] * 1000,
        "p50Ms": percentile(handler, 0.50) * 1000,
        "p99Ms": percentile(handler, 0.99) * 1000,
        "maxMs": max(handler) * 1000,
        "rawP50Ms": percentile(plain, 0.50) * 1000,
        "rawP99Ms": percentile(plain, 0.99) * 1000,
        "rawMaxMs": max(plain) * 1000,
        "met": percentile(handler, 0.99) * 1000 < 100,
    }
