"""Each function's cold invocation at the CPU share of each memory size (for bench.py).

Lambda gives a function CPU in proportion to its memory: MemorySize / 1,769 MB
of one vCPU (1,769 MB is one full vCPU, per Lambda's documentation). A cold
invocation's work here (interpreter start, imports, clients, the handler's
calls) is CPU-bound, so the share decides its time. The sweep runs each
function's cold invocation as ``scripts.bench.cold`` does (a fresh process from
the unzipped package, one real event, against the local stack) with the
process held to that share by the kernel: a cgroup v1 ``cpu`` controller group
with ``cpu.cfs_quota_us = 100000 * M / 1769`` per ``cpu.cfs_period_us`` of
100000, which the process joins before it starts Python.

Not in these figures: Lambda's own start (downloading and unpacking the code,
the sandbox), and TLS to real endpoints (the local stack is plain HTTP on
127.0.0.1): in an account a cold start takes longer by both.
"""
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.bench import cold as bench_cold
from scripts.bench.flow import PRICES

FULL_CORE_MB = 1769
SIZES = (128, 256, 512, 1024, 1769)
PERIOD_US = 100_000
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
# Cold-invocation targets at the chosen size (issue 17): Cognito gives a trigger
# 5 s in all, so 1 s leaves a 5x margin; the API answers a person.
TARGET_MS = {"pre_sign_up": 1000, "post_confirmation": 1000, "api": 1500}
SCHEDULED_EVENT = {"version": "0", "id": "bench", "detail-type": "Scheduled Event",
                   "source": "aws.events", "account": bench_cold.ACCOUNT,
                   "time": "2026-01-01T00:00:00Z", "region": bench_cold.REGION,
                   "resources": [], "detail": {}}


# A fresh process: import app, the handler's first (cold) call, then the same
# event again (warm: every handler is idempotent). It prints when the cold call
# ended, by the wall clock, so the cold time counts the interpreter's start.
SWEEP_CHILD = """
import json, sys, time
spec = json.loads(sys.argv[1])
import app
handler = app.app if spec["handler"] == "app" else getattr(app, spec["handler"])
result = handler(spec["event"], None)
cold_ended = time.time()
began = time.perf_counter()
try:
    handler(spec["event"], None)
except Exception:
    pass
warm = time.perf_counter() - began
print(json.dumps({"result": result, "coldEnded": cold_ended, "warmMs": warm * 1000}, default=str))
"""


def cpu_quota_us(memory_mb: int) -> int:
    """The cfs quota per 100 ms period that gives ``memory_mb``'s share of one core."""
    return max(1000, round(PERIOD_US * memory_mb / FULL_CORE_MB))


def unavailable() -> str | None:
    """Why this machine cannot hold a process to a CPU share (None: it can)."""
    if not (CGROUP_CPU / "cpu.cfs_quota_us").exists():
        return "no cgroup v1 cpu controller at /sys/fs/cgroup/cpu"
    if os.geteuid() != 0:
        return "making a cgroup needs root"
    return None


class CpuShare:
    """A cgroup that holds the processes that join it to ``memory_mb``'s CPU share."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.path = CGROUP_CPU / f"tenant-onboarding-bench-{os.getpid()}-{memory_mb}mb"

    def __enter__(self) -> "CpuShare":
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(cpu_quota_us(self.memory_mb)))
        return self

    def join(self) -> None:
        """Run in the child between fork and exec: it and its children are held."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def throttled_ms(self) -> float:
        """How long the kernel has held the group's processes back, in all."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "throttled_time":
                return int(value) / 1e6
        return 0.0

    def __exit__(self, *exc: Any) -> None:
        try:
            self.path.rmdir()  # its processes have all ended
        except OSError:
            pass


def pre_sign_up_event(entries: bench_cold.Entries, tenant: dict[str, str]) -> dict[str, Any]:
    """Cognito's PreSignUp_SignUp event for ``tenant``, from the sample trigger event."""
    event = entries.trigger_event(tenant)  # a new event (substitute copies)
    event["triggerSource"] = "PreSignUp_SignUp"
    event["request"] = {"userAttributes": {"email": tenant["email"], "name": tenant["name"]},
                        "validationData": None}
    event["response"] = {"autoConfirmUser": False, "autoVerifyEmail": False,
                         "autoVerifyPhone": False}
    return event


class Sweep:
    """Cold invocations of every entry point at every size, sizes interleaved
    within a run so whatever else the machine does falls on all of them alike."""

    def __init__(self, entries: bench_cold.Entries, sizes: tuple[int, ...] = SIZES) -> None:
        self.entries = entries
        self.sizes = sizes
        self.samples: dict[str, dict[int, list[float]]] = {}  # cold, seconds
        self.warm: dict[str, dict[int, list[float]]] = {}  # the second call, seconds
        self.throttled: dict[int, float] = {}

    def _invoke(self, share: CpuShare, function: str, handler: str, event: Any) -> Any:
        e = self.entries
        started = time.time()
        _, printed = bench_cold.run_child(
            SWEEP_CHILD, {"handler": handler, "event": event}, e.env(handler),
            e.layout, preexec=share.join)
        self.samples.setdefault(function, {}).setdefault(share.memory_mb, []).append(
            printed["coldEnded"] - started)
        self.warm.setdefault(function, {}).setdefault(share.memory_mb, []).append(
            printed["warmMs"] / 1000)
        return printed["result"]

    def one_run(self, share: CpuShare) -> None:
        e = self.entries
        self._invoke(share, "pre_sign_up", "pre_sign_up",
                     pre_sign_up_event(e, bench_cold.fresh_tenant()))
        self._invoke(share, "post_confirmation", bench_cold.TRIGGER,
                     e.trigger_event(bench_cold.fresh_tenant()))
        mapping = e.chain_mapping(bench_cold.fresh_tenant())
        for task in e.tasks:
            result = self._invoke(share, task["handler"], task["handler"],
                                  bench_cold.substitute(task["event"], mapping))
            bench_cold.learn(bench_cold.substitute(task["output"], mapping), result, mapping)
        answer = self._invoke(share, "api_handler", "app", e.api_event(e.tokens.pop()))
        if (answer or {}).get("statusCode") != 200:
            raise RuntimeError(f"the API handler answered {answer}")
        self._invoke(share, "reconcile", "reconcile", dict(SCHEDULED_EVENT, id=str(uuid.uuid4())))

    def run(self, runs: int, progress: Callable[[str], None] | None = None) -> None:
        for run in range(runs):
            for size in self.sizes:
                with CpuShare(size) as share:
                    self.one_run(share)
                    self.throttled[size] = self.throttled.get(size, 0.0) + share.throttled_ms()
                if progress:
                    progress(f"memory sweep: run {run + 1}/{runs} at {size} MB done")

    def table(self, warm: bool = False) -> dict[str, dict[int, float]]:
        """Median cold (or warm) invocation (ms) per function and size."""
        return {function: {size: statistics.median(times) * 1000
                           for size, times in by_size.items()}
                for function, by_size in (self.warm if warm else self.samples).items()}


def invocation_cost(ms: float, memory_mb: int) -> float:
    """Lambda's price of one invocation of ``ms`` at ``memory_mb`` (arm64 aside)."""
    return (PRICES["lambdaPerRequest"]
            + ms / 1000 * memory_mb / 1024 * PRICES["lambdaPerGbSecond"])


def cost_per_thousand(table: dict[str, dict[int, float]], sizes: dict[str, int]) -> float:
    """Lambda's price of 1,000 onboardings with the durations of ``table`` (the
    cold ones: every invocation cold, an upper bound; or the warm ones), each
    function at the size ``sizes`` gives it. One onboarding invokes each function
    of the table once, except the reconciler, which runs on its schedule."""
    return 1000 * sum(invocation_cost(by_size[sizes[function]], sizes[function])
                      for function, by_size in table.items() if function != "reconcile")


def chosen_sizes(template: dict[str, Any]) -> dict[str, int]:
    """Each function's MemorySize in the built template (its handler's name; the API: api_handler)."""
    sizes = {}
    for spec in template["Resources"].values():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        handler = spec["Properties"]["Handler"].split(".", 1)[1]
        memory = spec["Properties"].get("MemorySize") or template.get("Globals", {}).get(
            "Function", {}).get("MemorySize", 128)
        sizes["api_handler" if handler == "app" else handler] = int(memory)
    return sizes


def summarize(sweep: Sweep, template: dict[str, Any]) -> dict[str, Any]:
    table, warm = sweep.table(), sweep.table(warm=True)
    chosen = chosen_sizes(template)
    rows = []
    for function, by_size in table.items():
        size = chosen.get(function, 128)
        target = TARGET_MS.get("api" if function == "api_handler" else function)
        at_chosen = by_size.get(size)
        rows.append({
            "function": function, "coldMs": {str(s): round(ms) for s, ms in by_size.items()},
            "warmMs": {str(s): round(ms) for s, ms in warm[function].items()},
            "chosenMb": size, "chosenMs": round(at_chosen) if at_chosen is not None else None,
            "targetMs": target,
            "met": None if target is None or at_chosen is None else at_chosen <= target,
        })
    def costs(sizes: dict[str, int]) -> dict[str, float]:
        return {"cold": round(cost_per_thousand(table, sizes), 4),
                "warm": round(cost_per_thousand(warm, sizes), 4)}

    measured_chosen = all(chosen.get(f, 128) in by_size for f, by_size in table.items())
    return {
        "sizes": list(sweep.sizes), "runs": min(len(t) for s in sweep.samples.values()
                                                for t in s.values()),
        "rows": rows,
        "costPerThousandAllAt": {str(size): costs(dict.fromkeys(table, size))
                                 for size in sweep.sizes},
        "costPerThousandChosen": (costs({f: chosen.get(f, 128) for f in table})
                                  if measured_chosen else None),
        "throttledMs": {str(k): round(v) for k, v in sweep.throttled.items()},
        "samplesMs": {f: {str(s): [round(t * 1000) for t in ts] for s, ts in by_size.items()}
                      for f, by_size in sweep.samples.items()},
    }


def tokens_needed(runs: int, sizes: tuple[int, ...] = SIZES) -> int:
    """Waiting executions the sweep's API invocations decide."""
    return runs * len(sizes)


def main() -> int:
    """``python -m scripts.bench.memory [runs]``: the sweep alone, printed as JSON."""
    import contextlib
    import sys

    from scripts.bench import package as bench_package
    from scripts.bench.report import cold_stack, progress

    reason = unavailable()
    if reason:
        print(f"memory sweep: cannot hold a process to a CPU share here: {reason}",
              file=sys.stderr)
        return 2
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    workdir = bench_package.new_workdir()
    with contextlib.ExitStack() as stacks:
        package = bench_package.build_package(workdir / "build")
        layout = bench_package.LambdaLayout(workdir / "layout", package)
        stack, _, history, tokens = cold_stack(workdir, stacks, tokens_needed(runs) + 1)
        entries = bench_cold.prepare_cold_starts(stack.outputs, stack.state_dir, history, 0,
                                                 layout, package["template"], tokens)
        sweep = Sweep(entries)
        sweep.run(runs, progress)
        print(json.dumps(summarize(sweep, package["template"]), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
