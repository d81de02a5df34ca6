"""The memory sweep (make bench): Lambda's CPU share and price, and what it invokes."""
import json
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from scripts.bench import cold as bench_cold
from scripts.bench import memory
from scripts.shared import PROJECT_DIR


@pytest.mark.parametrize(("size", "quota"), [(128, 7236), (1024, 57886), (1769, 100_000)])
def test_a_sizes_cpu_quota_is_its_share_of_one_core_per_period(size, quota):
    assert memory.cpu_quota_us(size) == quota


def test_a_full_core_costs_per_gb_second_and_per_request():
    # one second at 1,024 MB: one GB-second, and one request
    assert memory.invocation_cost(1000, 1024) == pytest.approx(0.0000166667 + 0.20 / 1_000_000)


def test_the_cost_per_thousand_counts_each_function_once_and_not_the_reconciler():
    table = {"create_tenant_record": {512: 200.0, 1024: 100.0},
             "reconcile": {512: 9_000.0, 1024: 9_000.0}}

    at_1024 = memory.cost_per_thousand(table, {"create_tenant_record": 1024, "reconcile": 1024})

    assert at_1024 == pytest.approx(1000 * memory.invocation_cost(100.0, 1024))
    # half the time at half the memory: the same compute, the same request
    assert memory.cost_per_thousand(table, {"create_tenant_record": 512, "reconcile": 512}) \
        == pytest.approx(at_1024)


def test_the_chosen_sizes_are_read_per_function_from_the_built_template():
    template = {"Globals": {"Function": {"MemorySize": 512}}, "Resources": {
        "APIHandler": {"Type": "AWS::Serverless::Function",
                       "Properties": {"Handler": "app.app", "MemorySize": 1024}},
        "PreSignUp": {"Type": "AWS::Serverless::Function",
                      "Properties": {"Handler": "app.pre_sign_up"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}}}}

    assert memory.chosen_sizes(template) == {"api_handler": 1024, "pre_sign_up": 512}


def test_the_cost_per_thousand_leaves_out_what_an_onboarding_does_not_invoke():
    table = {entry: {1024: 1_000.0} for entry in memory.NOT_PER_ONBOARDING}
    table["create_tenant_record"] = {1024: 100.0}

    assert memory.cost_per_thousand(table, dict.fromkeys(table, 1024)) \
        == pytest.approx(1000 * memory.invocation_cost(100.0, 1024))


# --- the sweep's invocations: every function, each with its own timeout -------------------------
CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
TIMEOUTS = {name: spec["lambda_timeout"] for name, spec in CONFIG["lambda_functions"].items()}
TENANT = {"tenantId": "00000000-0000-4000-8000-000000000001", "email": "t@example.com",
          "name": "Tenant Ltd"}
ONBOARDING_TASKS = ["create_tenant_record", "create_stripe_customer", "update_tenant_with_stripe_id",
                    "create_contact_list", "await_decision", "update_status_and_notify"]


class Entries:
    """What the sweep reads of scripts.bench.cold.Entries: an execution's tasks,
    the functions' timeouts as packaged (the API's handler is "app")."""

    def __init__(self) -> None:
        self.functions = SimpleNamespace(timeout_seconds={
            ("app" if name == "api_handler" else name): seconds for name, seconds in TIMEOUTS.items()})
        self.layout = None
        self.tokens = ["token"] * 10
        self.history_tenant = TENANT
        self.tasks = [{"handler": name, "event": {"tenant": TENANT}, "output": None}
                      for name in ONBOARDING_TASKS]

    def env(self, handler: str) -> dict[str, str]:
        return {}

    def trigger_event(self, tenant: dict[str, str]) -> dict[str, Any]:
        return {"tenant": tenant}

    def chain_mapping(self, tenant: dict[str, str]) -> dict[str, str]:
        return bench_cold.identity(TENANT, tenant)

    def api_event(self, token: str) -> dict[str, Any]:
        return {"token": token}


class Children:
    """Each child the sweep starts (its spec), answered at once; it fails when
    its handler is one of ``failing``."""

    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []
        self.failing: set[str] = set()
        self.api_status = 200  # what the API's routes answer

    def run_child(self, code, spec, env, layout, cwd=None, preexec=None):
        self.specs.append(spec)
        error = "AwsServiceUnavailable: out of time" if spec["handler"] in self.failing else None
        answer = {"statusCode": self.api_status} if spec["handler"] == "app" else {}
        return 0.0, {"result": None if error else answer, "error": error,
                     "coldEnded": time.time(), "warmMs": 1.0}

    def handlers(self) -> list[str]:
        return [spec["handler"] for spec in self.specs]


@pytest.fixture
def children(monkeypatch) -> Children:
    started = Children()
    monkeypatch.setattr(bench_cold, "run_child", started.run_child)
    monkeypatch.setattr(memory, "begin_offboarding", lambda entries, tenant_id: None)
    return started


def swept(sizes=(128,)) -> memory.Sweep:
    sweep = memory.Sweep(Entries(), sizes)  # type: ignore[arg-type]
    sweep.offboarding = TENANT, [
        {"handler": "release_tenant_resources",
         "event": {"tenant": TENANT, "release": ["stripeCustomer"]}, "output": None},
        {"handler": "finish_offboarding",
         "event": {"tenant": TENANT, "outcome": {"status": "offboarded"}}, "output": None}]
    return sweep


def test_the_sweep_invokes_every_function_with_its_own_timeout(children):
    for size in (128, 1024):
        swept().one_run(memory.CpuShare(size))

    # every function of .chalice/config.json (test_limits: every function of the app)
    assert {spec["function"] for spec in children.specs} == set(TIMEOUTS)
    for spec in children.specs:
        # the context counts down from the function's lambda_timeout, not from 20 s
        assert spec["timeoutMs"] == TIMEOUTS[spec["function"]] * 1000, spec
    assert {spec["memoryMb"] for spec in children.specs} == {128, 1024}


def test_the_offboarding_tasks_run_on_the_tenant_the_onboarding_tasks_made(children):
    swept().one_run(memory.CpuShare(128))

    chain = children.specs[-8:]
    assert [spec["handler"] for spec in chain] \
        == ONBOARDING_TASKS + ["release_tenant_resources", "finish_offboarding"]
    onboarded = {spec["event"]["tenant"]["tenantId"] for spec in chain}
    assert len(onboarded) == 1 and TENANT["tenantId"] not in onboarded  # a fresh tenant each run


def test_a_failed_cold_call_is_timed_counted_and_ends_its_runs_chain(children):
    children.failing.add("create_contact_list")
    sweep = swept()

    sweep.one_run(memory.CpuShare(128))

    assert "create_contact_list" in children.handlers()
    assert "await_decision" not in children.handlers()
    assert sweep.failed == {"create_contact_list": {128: ["AwsServiceUnavailable: out of time"]}}
    template = {"Resources": {"Contact": {"Type": "AWS::Serverless::Function", "Properties": {
        "Handler": "app.create_contact_list", "MemorySize": 128}}}}
    [row] = [row for row in memory.summarize(sweep, template)["rows"]
             if row["function"] == "create_contact_list"]
    assert row["failed"] == {"128": 1} and row["met"] is None
    assert list(row["coldMs"]) == ["128"]  # timed until it failed


def test_the_childs_context_counts_down_from_the_timeout_as_the_handler_is_called(tmp_path):
    # a stand-in app: what its handler saw of its context, after a slow import
    (tmp_path / "app.py").write_text(
        "import os, time\n"
        "time.sleep(float(os.environ.get('INIT_SECONDS', 0)))  # Lambda's init phase\n"
        "def handler(event, context):\n"
        "    if event.get('fail'):\n"
        "        raise RuntimeError('out of time')\n"
        "    return {'left': context.get_remaining_time_in_millis(),\n"
        "            'name': context.function_name, 'memory': context.memory_limit_in_mb}\n")
    layout = SimpleNamespace(python=lambda: [sys.executable], cwd=tmp_path)
    spec = {"handler": "handler", "event": {}, "function": "create_tenant_record",
            "arn": "arn:aws:lambda:us-east-1:123456789012:function:create_tenant_record",
            "timeoutMs": 30_000, "memoryMb": 512}

    _, printed = bench_cold.run_child(memory.SWEEP_CHILD, spec, {"INIT_SECONDS": "1.5"}, layout)
    _, failed = bench_cold.run_child(memory.SWEEP_CHILD, {**spec, "event": {"fail": True}}, {},
                                     layout)

    # the 1.5 s of import are not counted: the countdown starts at the call
    assert 29_000 < printed["result"]["left"] <= 30_000
    assert printed["result"]["name"] == "create_tenant_record"
    assert printed["result"]["memory"] == 512
    assert printed["error"] is None
    # a failure is reported as Lambda reports it, not raised
    assert failed["result"] is None and failed["error"] == "RuntimeError: out of time"


def test_each_functions_timeout_is_read_from_the_built_template():
    template = {"Globals": {"Function": {"Timeout": 9}}, "Resources": {
        "APIHandler": {"Type": "AWS::Serverless::Function",
                       "Properties": {"Handler": "app.app", "Timeout": 20}},
        "FinishOffboarding": {"Type": "AWS::Serverless::Function",
                              "Properties": {"Handler": "app.finish_offboarding"}}}}

    functions = bench_cold.Functions(template, {})

    assert functions.timeout_seconds == {"app": 20, "finish_offboarding": 9}


def test_a_chain_broken_at_one_size_leaves_that_sizes_price_unknown_not_a_crash(children):
    sweep = swept(sizes=(128, 1024))
    sweep.runs = 1
    children.failing.add("create_contact_list")
    sweep.one_run(memory.CpuShare(128))
    children.failing.clear()
    sweep.one_run(memory.CpuShare(1024))

    summary = memory.summarize(sweep, {"Resources": {}})

    assert summary["runs"] == 1
    assert summary["costPerThousandAllAt"]["128"] is None  # await_decision never ran at 128 MB
    assert summary["costPerThousandAllAt"]["1024"]["cold"] > 0
    assert summary["costPerThousandChosen"] is None  # the template's default, 128 MB


def test_an_api_answer_of_503_is_a_failed_call(children):
    children.api_status = 503
    sweep = swept()

    sweep.one_run(memory.CpuShare(128))

    assert sweep.failed[memory.API] == {128: ["HTTP 503"]}
    assert sweep.failed[memory.API_LISTING] == {128: ["HTTP 503"]}
    assert "await_decision" in children.handlers()  # the routes are no link of the chain
