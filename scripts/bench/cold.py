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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote, quote_plus

from scripts.local.stack import FAKE_AWS_ENVIRONMENT
from scripts.deploy.template import PROJECT_DIR, StageNames

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE = "local"
EVENTS_DIR = PROJECT_DIR / "tests" / "events"
TRIGGER = "post_confirmation"
API = "finalize_onboarding"
STRIPE_ENTRY = "create_stripe_customer"
TARGETS = {STRIPE_ENTRY: 1.5}
DEFAULT_TARGET = 1.15
TOKEN = "@@TASK_TOKEN@@"

# --- the fresh processes ---------------------------------------------------------
# The timed app process: import app, one handler call, one line of JSON out.
APP_CHILD = """
import json, sys
spec = json.loads(sys.argv[1])
import app
handler = app.app if spec["handler"] == "app" else getattr(app, spec["handler"])
result = handler(spec["event"], None)
print(json.dumps({"result": result, "stripe": "stripe" in sys.modules}, default=str))
"""

# The timed baseline: boto3 and the recorded calls, the Stripe request with urllib.
REPLAY_CHILD = """
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
print(json.dumps({"responses": responses, "stripe": "stripe" in sys.modules}))
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


def child_environment(outputs: Dict[str, Any], layout: Any, baseline: bool = False) -> Dict[str, str]:
    """What a Lambda container of the stage has, pointed at the local stack; for
    the baseline, a function that ships nothing (boto3 from the runtime only)."""
    names = StageNames(STAGE)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "AWS_ENDPOINT_URL": outputs["awsEndpoint"],
        **FAKE_AWS_ENVIRONMENT,
        "AWS_EC2_METADATA_DISABLED": "true",
        "EVENT_SOURCE": "tenant-onboarding",
        "LOG_LEVEL": "INFO",
        **names.environment(REGION, ACCOUNT),
        **(layout.baseline_env() if baseline else layout.env()),
    }
    if outputs.get("stripeApiBase"):
        env["STRIPE_SECRET_ID"] = names.stripe_secret
        env["STRIPE_API_BASE"] = outputs["stripeApiBase"]
    return env


def run_child(code: str, spec: Any, env: Dict[str, str], layout: Any,
              cwd: Optional[Path] = None) -> Tuple[float, Dict[str, Any]]:
    """Wall seconds of one fresh interpreter running ``code``, and what it printed."""
    argv = layout.python() + ["-c", code, json.dumps(spec)]
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd or layout.cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"a cold-start process failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


# --- substituting one tenant for another -------------------------------------------
def fresh_tenant() -> Dict[str, str]:
    tenant_id = str(uuid.uuid4())
    return {"tenantId": tenant_id, "email": f"bench-{tenant_id[:13]}@example.com",
            "name": f"Bench {tenant_id[:13]}"}


def identity(old: Dict[str, str], new: Dict[str, str]) -> Dict[str, str]:
    mapping: Dict[str, str] = {}
    for key in ("name", "email", "tenantId"):  # the name may hold the email
        mapping[old[key]] = new[key]
    return mapping


def substitute(value: Any, mapping: Dict[str, str]) -> Any:
    """``value`` with every mapped string replaced, also inside JSON and form strings."""
    text = json.dumps(value)
    pairs = []
    for old, new in mapping.items():
        pairs += [(old, new), (quote_plus(old), quote_plus(new)), (quote(old), quote(new))]
    for old, new in sorted(set(pairs), key=lambda p: -len(p[0])):
        if old:
            text = text.replace(old, new)
    return json.loads(text)


def learn(recorded: Any, actual: Any, mapping: Dict[str, str]) -> None:
    """Map the recorded run's generated values (customer ids...) to this run's."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        for key in recorded.keys() & actual.keys():
            learn(recorded[key], actual[key], mapping)
    elif isinstance(recorded, list) and isinstance(actual, list):
        for r, a in zip(recorded, actual):
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
def tasks_from_history(events: List[Dict[str, Any]]) -> Tuple[Dict[str, str], List[Dict[str, Any]]]:
    """The execution's tenant, and each Lambda task in order: handler, input, output."""
    prefix = StageNames(STAGE).function("")
    started = next(e for e in events if e["type"] == "ExecutionStarted")
    tenant = json.loads(started["executionStartedEventDetails"]["input"])["tenant"]
    tasks: List[Dict[str, Any]] = []
    seen = set()
    for n, event in enumerate(events):
        if event["type"] == "LambdaFunctionScheduled":
            details = event["lambdaFunctionScheduledEventDetails"]
            handler = details["resource"].rsplit(":function:", 1)[-1][len(prefix):]
            task_input = json.loads(details["input"])
            output = next(
                (json.loads(e["lambdaFunctionSucceededEventDetails"].get("output") or "null")
                 for e in events[n + 1:] if e["type"] == "LambdaFunctionSucceeded"), None)
        elif (event["type"] == "TaskScheduled"
              and event["taskScheduledEventDetails"].get("resourceType") == "lambda"):
            parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
            handler = parameters["FunctionName"].rsplit(":function:", 1)[-1][len(prefix):]
            task_input, output = parameters["Payload"], None
        else:
            continue
        if handler not in seen:  # a retried task: its first input is the one
            seen.add(handler)
            tasks.append({"handler": handler, "event": task_input, "output": output})
    return tenant, tasks


class Entries:
    """Per run, the app event and the baseline calls of every entry point."""

    def __init__(self, outputs: Dict[str, Any], state_dir: Path, history: List[Dict[str, Any]],
                 layout: Any) -> None:
        import boto3

        from scripts.bench.load import LoadRun

        self.outputs = outputs
        self.use_layout(layout)
        self.load = LoadRun(outputs, state_dir, workers=8)
        self.history_tenant, self.tasks = tasks_from_history(history)
        self.history_token = next(
            (t["event"].get("taskToken") for t in self.tasks if "taskToken" in t["event"]), None)
        self.sample = json.loads((EVENTS_DIR / "post_confirmation.json").read_text())
        attributes = self.sample["request"]["userAttributes"]
        self.sample_tenant = {"tenantId": attributes["sub"], "email": attributes["email"],
                              "name": attributes["name"]}
        self.sample["userPoolId"] = outputs["userPoolId"]
        self.tokens: List[str] = []
        self.session = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)
        self._clients: Dict[str, Any] = {}

    def use_layout(self, layout: Any) -> None:
        self.layout = layout
        self.env = child_environment(self.outputs, layout)
        self.base_env = child_environment(self.outputs, layout, baseline=True)

    @property
    def chain(self) -> List[str]:
        return [t["handler"] for t in self.tasks]

    def prepare_tokens(self, count: int) -> None:
        """``count`` executions waiting for a decision, through real sign-ups."""
        run = uuid.uuid4().hex[:6]
        emails = [f"bench-cold-{run}-{n}@example.com" for n in range(count)]
        with ThreadPoolExecutor(8) as pool:
            tenants = list(pool.map(self.load.sign_up, emails))
            list(pool.map(lambda t: self.load.await_token(t, 60), tenants))
        if any("token" not in t for t in tenants):
            raise RuntimeError("bench sign-ups never reached the wait for a decision")
        self.tokens += [t["token"] for t in tenants]

    # --- app events ------------------------------------------------------------------
    def trigger_event(self, tenant: Dict[str, str]) -> Dict[str, Any]:
        return substitute(self.sample, identity(self.sample_tenant, tenant))

    def api_event(self, token: str) -> Dict[str, Any]:
        return {
            "resource": "/tenant/finalize", "path": "/tenant/finalize", "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "Host": "example.execute-api"},
            "multiValueHeaders": {"Content-Type": ["application/json"]},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None,
            "requestContext": {
                "resourcePath": "/tenant/finalize", "httpMethod": "POST",
                "path": "/api/tenant/finalize", "stage": "api", "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1",
                             "userArn": f"arn:aws:iam::{ACCOUNT}:user/bench-admin"},
            },
            "body": json.dumps({"taskToken": token, "status": "approved"}),
            "isBase64Encoded": False,
        }

    def chain_mapping(self, tenant: Dict[str, str]) -> Dict[str, str]:
        mapping = identity(self.history_tenant, tenant)
        if self.history_token:
            mapping[self.history_token] = str(uuid.uuid4())
        return mapping

    # --- the recording pass --------------------------------------------------------------
    def record(self) -> None:
        """The app's own calls for each entry point, for the baselines to replay."""
        self.recorded: Dict[str, Dict[str, Any]] = {}
        tenant = fresh_tenant()
        self.recorded[TRIGGER] = self._record(TRIGGER, self.trigger_event(tenant), tenant)
        tenant = fresh_tenant()
        mapping = self.chain_mapping(tenant)
        for task in self.tasks:
            recording = self._record(task["handler"], substitute(task["event"], mapping), tenant)
            learn(substitute(task["output"], mapping), recording["result"], mapping)
            recording["tokenFor"] = mapping.get(self.history_token)
            self.recorded[task["handler"]] = recording
        self.prepare_tokens(1)
        token = self.tokens.pop()
        recording = self._record("app", self.api_event(token), {"token": token})
        if (recording["result"] or {}).get("statusCode") != 200:
            raise RuntimeError(f"the API handler answered {recording['result']}")
        self.recorded[API] = recording

    def _record(self, handler: str, event: Any, subject: Dict[str, str]) -> Dict[str, Any]:
        _, printed = run_child(RECORD_CHILD, {"handler": handler, "event": event},
                               self.env, self.layout)
        return {"subject": subject, "calls": printed["calls"], "result": printed["result"]}

    def baseline_calls(self, handler: str, mapping: Dict[str, str]) -> List[Dict[str, Any]]:
        return substitute(self.recorded[handler]["calls"], mapping)

    def replay_here(self, handler: str, mapping: Dict[str, str]) -> None:
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


def _median(values: List[float]) -> float:
    return statistics.median(values)


class ColdStarts:
    """Timed pairs (app, baseline), alternating who goes first, run after run."""

    def __init__(self, entries: Entries) -> None:
        self.entries = entries
        self.samples: Dict[str, Dict[str, List[float]]] = {}
        self.stripe_loaded: Dict[str, bool] = {}

    def pair(self, run: int, handler: str, app_handler: str, event: Any,
             calls: List[Dict[str, Any]]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        e = self.entries
        order = [("app", APP_CHILD, {"handler": app_handler, "event": event}),
                 ("baseline", REPLAY_CHILD, {"calls": calls})]
        if run % 2:
            order.reverse()
        printed: Dict[str, Dict[str, Any]] = {}
        for kind, code, spec in order:
            if kind == "app":
                wall, printed[kind] = run_child(code, spec, e.env, e.layout)
            else:
                wall, printed[kind] = run_child(code, spec, e.base_env, e.layout,
                                                e.layout.baseline_cwd)
            if run:  # run 0 is the warm-up
                self.samples.setdefault(handler, {"app": [], "baseline": []})[kind].append(wall)
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
        """One entry point alone: the Stripe task (its record made beforehand,
        from this process) or the API."""
        if handler == STRIPE_ENTRY:
            self.stripe_only(run)
        elif handler == API:
            e = self.entries
            token, base_token = e.tokens.pop(), e.tokens.pop()
            self.pair(run, API, "app", e.api_event(token), e.baseline_calls(
                API, {e.recorded[API]["subject"]["token"]: base_token}))
        else:
            raise ValueError(f"no single run for {handler}")

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

    def rows(self, layout: str) -> List[Dict[str, Any]]:
        e = self.entries
        rows = []
        for handler, kinds in self.samples.items():
            app_s, base_s = _median(kinds["app"]), _median(kinds["baseline"])
            # each run's app time over the baseline of the same run, then the median
            ratio = _median([a / b for a, b in zip(kinds["app"], kinds["baseline"])])
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
                "appSamplesMs": [round(s * 1000, 1) for s in kinds["app"]],
                "baselineSamplesMs": [round(s * 1000, 1) for s in kinds["baseline"]],
            })
        return rows


def measure_cold_starts(
    outputs: Dict[str, Any], state_dir: Path, history: List[Dict[str, Any]], runs: int,
    layout: Any, progress: Optional[Callable[[str], None]] = None,
    other_layouts: Tuple[Tuple[Any, Tuple[str, ...]], ...] = (),
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Median cold start per entry point over ``runs`` (after one warm-up run);
    and some entry points again from other layouts: ((layout, handlers), ...)."""
    entries = Entries(outputs, state_dir, history, layout)
    entries.record()
    api_runs = 1 + sum(API in handlers for _, handlers in other_layouts)
    entries.prepare_tokens(2 * (runs + 1) * api_runs)
    cold = ColdStarts(entries)
    for run in range(runs + 1):
        cold.one_run(run)
        if progress:
            progress(f"cold starts ({layout.name}): " + (f"run {run}/{runs}" if run else "warm-up"))
    other_rows: List[Dict[str, Any]] = []
    for other_layout, handlers in other_layouts:
        handlers = tuple(h for h in handlers if h == API or h in entries.chain)
        entries.use_layout(other_layout)
        other = ColdStarts(entries)
        for run in range(runs + 1):
            for handler in handlers:
                other.single(run, handler)
        other_rows += other.rows(other_layout.name)
        if progress:
            progress(f"cold starts ({other_layout.name}): {', '.join(handlers)} done")
    return cold.rows(layout.name), other_rows


def measure_trigger_latency(
    outputs: Dict[str, Any], calls: int, interval: float, layout: Any,
) -> Dict[str, Any]:
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
        cwd=layout.cwd, env=child_environment(outputs, layout), capture_output=True, text=True,
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
