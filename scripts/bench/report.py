"""``make bench``: cold starts, import cost, package size, trigger latency,
throughput and cost of the onboarding, measured on this machine.

    make bench                                   # everything, writes docs/benchmarks.md
    make bench BENCH_ARGS="--runs 11 --no-write" # more runs, print only

Not a test: it prints one table (each timing a median, with its baseline
from the same run) and writes the same table, the machine and the date to
docs/benchmarks.md. Targets that are missed are marked, not failed on; the
exit code is non-zero only when a measurement could not be made.

Pieces: package.py (the package as scripts.deploy.package builds it, unzipped
as on Lambda; import cost), cold.py (cold starts, trigger latency), flow.py
(local stacks, throughput, cost). The progress lines on stderr carry the
seconds since start: where the time goes.
"""
import argparse
import contextlib
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scripts.bench import cold as bench_cold
from scripts.bench import flow as bench_flow
from scripts.bench import memory as bench_memory
from scripts.bench import package as bench_package
from scripts.bench import subscribers as bench_subscribers
from scripts.shared import PROJECT_DIR

DOC = PROJECT_DIR / "docs" / "benchmarks.md"
MB = 1024 * 1024
# Our own package targets (Lambda's limits are 50 MB zipped, 250 MB unzipped):
# see methodology() for why these numbers.
FUNCTION_ZIP_TARGET = 1 * MB
# boto3/botocore ship in the layer, pinned (requirements.txt: the SES tenant
# API): a third of Lambda's 50 MB zipped, a quarter of its 250 MB unzipped
ZIPPED_TARGET = 30 * MB
UNZIPPED_TARGET = 60 * MB
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- the machine ----------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_DIR,
            capture_output=True, text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_DIR,
            capture_output=True, text=True,
        ).stdout.strip()
        commit = (commit + (" (with uncommitted changes)" if dirty else "")) or "unknown"
    except OSError:
        commit = "unknown"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc,
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit,
    }


# --- the table ------------------------------------------------------------------------
def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def ratio(row: dict[str, Any]) -> str:
    """x1.23; with a third decimal where two would hide which side of the target it is."""
    close = abs(row["ratio"] - row["target"]) < 0.005
    return f"x{row['ratio']:.3f}" if close else f"x{row['ratio']:.2f}"


def ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def size(value: int) -> str:
    return f"{value / MB:.2f} MB" if value >= MB else f"{value / 1024:.0f} KB"


def limit(value: int) -> str:
    """A round size target: 1 MB, 10 MB."""
    return f"{value / MB:g} MB" if value >= MB else f"{value / 1024:g} KB"


def build_rows(r: dict[str, Any], args: argparse.Namespace) -> list[list[str]]:
    """[area, measure, result, baseline or detail, target, verdict] per row."""
    rows: list[list[str]] = []

    # cold starts
    for row in r["cold"]:
        rows.append([
            "Cold start", row["entry"], ms(row["appMs"]),
            f"{ms(row['baselineMs'])} boto3 {row['baseline']}; {ratio(row)}"
            + ("; stripe imported" if row["stripeImported"] else ""),
            f"<= x{row['target']:.2f}", verdict(row["met"]),
        ])
    for row in r.get("coldOther", []):
        ref = row["reference"]
        rows.append([
            "Cold start", f"{row['entry']} ({row['layout']})", ms(row["appMs"]),
            f"{ms(row['baselineMs'])} same baseline; {ratio(row)}; in the same "
            f"{len(row['appSamplesMs'])} runs, from the package with its .pyc files: "
            f"{ms(ref['appMs'])}, {ratio(ref)}",
            "(comparison)", "",
        ])

    # import cost
    imp = r["imports"]
    top = ", ".join(f"{m['module']} {m['cumulativeMs']:.1f}" for m in imp["direct"][:3])
    own = ", ".join(f"{m['module']} {m['selfMs']:.1f}" for m in imp["bySelf"][:3])
    rows.append(["Import", "import app: total", ms(imp["totalMs"]),
                 f"{imp['modules']} modules; direct imports (cumulative ms): {top}", "", ""])
    rows.append(["Import", "import app: slowest modules", "", f"self ms: {own}", "", ""])
    after = r["importsAfterBoto3"]
    extra = ", ".join(f"{m['module']} {m['cumulativeMs']:.1f}" for m in after["direct"][:3])
    rows.append(["Import", "import app, boto3 already imported", ms(after["totalMs"]),
                 f"what the app's import adds to a process that imports boto3 anyway: "
                 f"{after['modules']} modules; direct imports (cumulative ms): {extra}", "", ""])
    rows.append(["Import", "stripe in import app", "absent" if not imp["stripeImported"]
                 else "PRESENT", "stripe imported by the Stripe task only: "
                 + ("yes" if _stripe_only_on_stripe_path(r) else "NO"),
                 "absent", verdict(not imp["stripeImported"] and _stripe_only_on_stripe_path(r))])

    # package
    pkg = r["package"]
    fn, layer = pkg["function"], pkg["layer"]
    rows.append(["Package", "function zip (deployment.zip)", size(fn["bytes"]),
                 f"{fn['files']} files, {fn['pycFiles']} of them .pyc "
                 f"({size(fn['pycBytes'])} compressed); app.py, chalicelib, chalice's runtime; "
                 f"one zip for all {pkg['functions']} functions",
                 f"< {limit(FUNCTION_ZIP_TARGET)}", verdict(fn["bytes"] < FUNCTION_ZIP_TARGET)])
    rows.append(["Package", "layer zip (layer-deployment.zip)", size(layer["bytes"]),
                 f"{layer['files']} files, {layer['pycFiles']} of them .pyc "
                 f"({size(layer['pycBytes'])} compressed); biggest: "
                 + ", ".join(f"{b['name']} {size(b['bytes'])}" for b in pkg["biggest"][:3]),
                 "", ""])
    whole_met = pkg["zippedBytes"] < ZIPPED_TARGET and pkg["unzippedBytes"] < UNZIPPED_TARGET
    rows.append(["Package", "whole package: zipped / unzipped",
                 f"{size(pkg['zippedBytes'])} / {size(pkg['unzippedBytes'])}",
                 f".pyc files: {size(pkg['pycZippedBytes'])} of the zipped size; "
                 "boto3/botocore shipped, pinned (SES's tenant API): "
                 + (", ".join(pkg["shipsBoto"]) or "no")
                 + "; Lambda's limits: 50 MB zipped, 250 MB unzipped",
                 f"< {limit(ZIPPED_TARGET)} / < {limit(UNZIPPED_TARGET)}", verdict(whole_met)])

    sdk = r.get("sdk")
    if sdk:
        rows.append(["Package", "boto3 + the subscriber store's clients, cold: layer / runtime",
                     f"{sdk['layerMs']} / {sdk['runtimeMs']} ms",
                     f"median of {sdk['runs']} fresh processes each; the layer's copy is the one "
                     f"imported ({'yes' if sdk['fromLayer'] else 'NO'}): shipping it costs size, "
                     "not time", "", ""])

    scale = r.get("scale")
    if scale:
        met = scale["active"] == scale["signups"] == scale["sesTenants"] and not scale["problems"]
        rows.append(["Scale", f"{scale['signups']} tenants onboarded and approved, SES's quotas "
                     "enforced, the default mode", f"{scale['wallSeconds']} s",
                     f"{scale['active']} active, {scale['failed']} failed, {scale['sesTenants']} "
                     f"SES tenants, 0 SES lists; {scale['signupsPerSecondToAwaiting']} sign-ups/s "
                     f"to awaiting approval; {scale.get('decisionsRetried', 0)} decisions "
                     f"retried after a 503; problems: {len(scale['problems'])}",
                     "all active, each with its own SES tenant", verdict(met)])
    subs = r.get("subscribers")
    if subs:
        each = subs["importSecondsEach"]
        rows.append(["Subscribers", "10,000 imported into one tenant, 10 calls of 1,000",
                     f"{subs['importSecondsTotal']} s",
                     f"each call {min(each)}-{max(each)} s on the local stack; counted "
                     f"{subs['subscribersCounted']} for {subs['subscriberItems']} items; "
                     f"{subs['transactions']} transactions, {subs['writeUnits']} write units in "
                     f"DynamoDB: table {subs['tableWriteUnits']}, indexes "
                     f"{subs['indexWriteUnits']} ({subs['writeUnitsPerSubscriber']} a subscriber)",
                     "count exactly 10,000",
                     verdict(subs["subscribersCounted"] == subs["subscriberItems"] == 10_000)])
        rows.append(["Subscribers", "50 concurrent adds of the same 10 emails",
                     f"count {subs['concurrentCount']}",
                     "answers: " + ", ".join(f"{n} x {code}" for code, n in
                                              subs["concurrentStatuses"].items())
                     + f"; {subs.get('concurrentRetries', 0)} retries after a 503"
                     + f"; {subs['concurrentSeconds']} s", "10",
                     verdict(subs["concurrentCount"] == 10
                             and bench_subscribers.all_answered(subs["concurrentStatuses"]))])

    # trigger latency
    t = r["trigger"]
    rows.append([
        "Trigger", f"post_confirmation p50 / p99 ({t['calls']} warm calls)",
        f"{ms(t['p50Ms'])} / {ms(t['p99Ms'])}",
        f"plain StartExecution at the same pace: {ms(t['rawP50Ms'])} / {ms(t['rawP99Ms'])}; "
        f"first (cold) call {ms(t['firstCallMs'])}",
        "p99 < 100 ms", verdict(t["met"]),
    ])

    # throughput
    for run in r["throughput"]:
        if "error" in run:
            rows.append(["Throughput", f"{run['concurrency']} concurrent ({run['signups']} "
                         f"sign-ups)", "FAILED",
                         f"{len(run['failedAttempts'])} bursts failed; last: {run['error'][:300]}",
                         "", ""])
            continue
        problems = f"; {len(run['problems'])} PROBLEMS" if run["problems"] else ""
        if run.get("failedAttempts"):
            problems += (f"; a first burst FAILED ({run['failedAttempts'][0][:160]}), "
                         "this is the second")
        rows.append([
            "Throughput", f"{run['concurrency']} concurrent ({run['signups']} sign-ups)",
            f"{run['signupsPerSecondToAwaiting']:.2f} sign-ups/s",
            f"sign-up->awaiting p50/p95 {run['signupToAwaitingP50s']:.2f}/"
            f"{run['signupToAwaitingP95s']:.2f} s; approve->active p50/p95 "
            f"{run['decisionToFinalP50s']:.2f}/{run['decisionToFinalP95s']:.2f} s{problems}",
            "", "",
        ])

    memory = r.get("memory")
    if memory and memory.get("rows"):
        for row in memory["rows"]:
            curve = "/".join(str(row["coldMs"].get(str(size), "-")) for size in memory["sizes"])
            target = row["targetMs"]
            failed = "".join(
                f"; failed at {size} MB ({count} of {memory['runs']}: "
                f"{row['firstErrors'][size].split(':', 1)[0]})"
                for size, count in row.get("failed", {}).items())
            rows.append([
                "Memory", f"{row['function']}: cold invocation at {row['chosenMb']} MB "
                f"({row['chosenMb'] / bench_memory.FULL_CORE_MB:.0%} of a core)",
                f"{row['chosenMs']} ms",
                f"at {'/'.join(str(s) for s in memory['sizes'])} MB: {curve} ms; warm at "
                f"{row['chosenMb']} MB: {row['warmMs'].get(str(row['chosenMb']), '?')} ms"
                + failed,
                f"<= {target} ms" if target else "", verdict(row["met"]),
            ])
        chosen = memory.get("costPerThousandChosen")
        if chosen:
            every = "; ".join(f"all at {size} MB {price_pair(c, '/')}"
                              for size, c in memory["costPerThousandAllAt"].items())
            rows.append([
                "Memory", "Lambda per 1,000 onboardings at the chosen sizes, every invocation "
                "cold / every one warm", f"${chosen['cold']:.4f} / ${chosen['warm']:.4f}",
                every, "", ""])
    elif memory:
        rows.append(["Memory", "cold invocations at Lambda's CPU share", "not measured",
                     memory["unavailable"], "", ""])

    # cost
    for c in r["cost"]:
        k = c["cost"]
        rows.append([
            "Cost", f"per 1,000 onboardings, Stripe {'on' if c['stripe'] else 'off'}",
            f"${k['total']:.4f}",
            f"{c['transitions']} transitions (${k['stepFunctions']:.4f}); "
            f"{k['invocations']} Lambda invocations = {c['stateMachineLambdas']} tasks + "
            f"{c['otherLambdas']} (trigger, API) (${k['lambdaRequests']:.4f} requests + "
            f"${k['lambdaCompute']:.4f} compute)",
            "", "",
        ])
    return rows


def _stripe_only_on_stripe_path(r: dict[str, Any]) -> bool:
    return all(row["stripeImported"] == (row["handler"] == bench_cold.STRIPE_ENTRY)
               for row in r["cold"])


HEADER = ["Area", "Measure", "Result", "Baseline / detail", "Target", "Verdict"]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows + [HEADER]) for i in range(len(HEADER))]
    widths[3] = min(widths[3], 70)

    def wrap(text: str, width: int) -> list[str]:
        words, lines, line = text.split(" "), [], ""
        for word in words:
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        return lines + [line]

    out = []
    rule = "+".join("-" * (w + 2) for w in widths)
    for n, row in enumerate([HEADER] + rows):
        cells = [wrap(str(c), widths[i]) if i == 3 else [str(c)] for i, c in enumerate(row)]
        for k in range(max(len(c) for c in cells)):
            out.append(" | ".join(
                (c[k] if k < len(c) else "").ljust(widths[i]) for i, c in enumerate(cells)
            ).rstrip())
        if n == 0 or (n < len(rows) and rows[n - 1 + 1][0] != row[0]):
            out.append(rule)
    return "\n".join(out)


def markdown_table(rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the notes --------------------------------------------------------------------------
def notes(r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """What each figure is, and why a missed target is missed, from the figures."""
    out: list[str] = []
    other = r.get("coldOther", [])
    missed = [row for row in r["cold"] if not row["met"]]
    if missed:
        after = r["importsAfterBoto3"]
        worst = ", ".join(
            f"{row['entry']} {ratio(row)} (target x{row['target']:.2f}, "
            f"{row['appMs'] - row['baselineMs']:+.0f} ms in the medians; full garbage collections "
            f"{row['appFullGcMs']:.0f} ms in its process against {row['baselineFullGcMs']:.0f} "
            f"ms in the baseline's)" for row in missed)
        out.append(f"**Cold-start targets missed**: {worst}. The app's process pays what the "
                   f"baseline pays plus `import app` and its handler's first call (chalicelib's "
                   f"lazily imported modules, clients built with their Config, log lines; in "
                   f"the Stripe task, importing and building the Stripe client). `import app` "
                   f"itself is small: in a process that has imported boto3 (as both do) it adds "
                   f"{ms(after['totalMs'])} ({after['modules']} modules, from the shipped .pyc "
                   f"files; `python -X importtime`, median of {after['runs']}). Much of the rest is "
                   f"one full garbage collection (the medians above): Python runs its first "
                   f"one after about 70,000 net allocations (thresholds 700/10/10), the "
                   f"baseline's processes end just short of it (9 or 10 of the 10 intermediate "
                   f"collections it waits for, counted while preparing this bench), and the few "
                   f"percent more that Chalice, chalicelib and the handler's own work allocate "
                   f"push the app's process over it, in its first call, when it has botocore's "
                   f"models to traverse."
                   + (" The app freezes its heap (`gc.freeze()`) once boto3's session is built "
                      "in a Lambda container (chalicelib/dependencies.py), so a collection here "
                      "walked only what the first call made after that."
                      if any(row["appFullGcMs"] > row["baselineFullGcMs"] + 5 for row in missed)
                      else "")
                   + " Single runs vary by tens of ms on this machine (every "
                   "sample is in the JSON below): a ratio within about 0.05 of its target, or a "
                   "gap that changes sign from run to run, is noise.")
    if other:
        compared = "; ".join(
            f"{row['entry']}: {ms(row['appMs'])} {row['layout']} ({ratio(row)}) against "
            f"{ms(row['reference']['appMs'])} from the package as built "
            f"({ratio(row['reference'])}), in alternate runs of the same stretch"
            for row in other)
        out.append(f"**What the .pyc files buy**: {compared}. \"without .pyc\" is the same "
                   f"package with every __pycache__ left out when unzipping: Lambda cannot "
                   f"write .pyc files (/var/task and /opt are read-only), so a package without "
                   f"them compiles chalice's, the app's and, in the Stripe task, stripe's and "
                   f"requests' modules on every cold start.")
    pkg = r["package"]
    if pkg["function"]["bytes"] >= FUNCTION_ZIP_TARGET or pkg["zippedBytes"] >= ZIPPED_TARGET \
            or pkg["unzippedBytes"] >= UNZIPPED_TARGET:
        out.append(f"**Package over its targets**: function zip {size(pkg['function']['bytes'])}"
                   f", whole package {size(pkg['zippedBytes'])} zipped and "
                   f"{size(pkg['unzippedBytes'])} unzipped; biggest in the layer: "
                   + ", ".join(f"{b['name']} {size(b['bytes'])}" for b in pkg["biggest"][:3])
                   + (f"; it ships {', '.join(pkg['shipsBoto'])}, which the runtime has"
                      if pkg["shipsBoto"] else "") + ".")
    for run in r["throughput"]:
        if run.get("failedAttempts"):
            out.append(
                f"**Throughput at {run['concurrency']} concurrent**: "
                f"{len(run['failedAttempts'])} burst(s) of {run['signups']} sign-ups failed: "
                f"{run['failedAttempts'][0][:300]}. The post-confirmation trigger's "
                f"StartExecution got no answer from the local stack within its client's "
                f"5-second read timeout (chalicelib/dependencies.py), so Cognito's confirm "
                f"failed as on AWS. The local stack runs moto, the state machine and every "
                f"Lambda in one Python process on {r['machine']['nproc']} cores (load average "
                f"at start: {r['machine']['load']}); it is its limit, not AWS's, but a burst "
                f"that slow on AWS would fail the same way.")
    t = r["trigger"]
    if not t["met"]:
        busy = (f" On this machine that process is saturated at this pace already: the plain "
                f"call alone takes {ms(t['rawP50Ms'])} at the median."
                if t["rawP50Ms"] > 50 else "")
        out.append(
            f"**Trigger p99 over 100 ms**: a plain boto3 StartExecution against the same local "
            f"endpoint, interleaved with the handler's calls at the same pace, has p99 "
            f"{ms(t['rawP99Ms'])} (p50 {ms(t['rawP50Ms'])}, max {ms(t['rawMaxMs'])}) against the "
            f"handler's {ms(t['p99Ms'])} (p50 {ms(t['p50Ms'])}, max {ms(t['maxMs'])}): the tail "
            f"is the local stack's, not the handler's, whose median is "
            f"{t['p50Ms'] - t['rawP50Ms']:+.1f} ms from the plain call's. Every call starts an "
            f"execution that one Python process (moto, its Step Functions engine and every "
            f"Lambda) runs to its wait while it answers the calls, and that process also "
            f"stalls now and then as its heap grows (full garbage collections of 0.3-0.4 s "
            f"once a few hundred executions are held, traced while preparing this bench)."
            f"{busy} It says nothing about StartExecution on AWS.")
    return out


def methodology(r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    pkg = r["package"]
    memory = pkg["memoryMb"]
    concurrency = ", ".join(str(c) for c in args.concurrency)
    compared = (f" The Stripe task is also timed from the same package without its .pyc files "
                f"(every __pycache__ left out when unzipping), median of {args.compare_runs} "
                f"runs after a warm-up, each followed by a run from the package as built, "
                f"both against the same baseline: what the bytecode saves (a gap of hundreds "
                f"of ms: a few runs show it)."
                if r.get("coldOther") else "")
    return [
        f"**Runs**: cold starts: {args.runs} runs per entry point (`--runs`), "
        f"{args.compare_runs} for the comparison without .pyc (`--compare-runs`, each beside "
        f"a run from the package as built); import "
        f"cost: {args.import_runs} runs of each variant (`--import-runs`); trigger latency: "
        f"{args.trigger_calls} warm calls (`--trigger-calls`); throughput: {concurrency} "
        f"concurrent (`--concurrency`). The package is built once and unzipped once. What is "
        f"not timed runs side by side: while the package builds, a Stripe-off stack runs the "
        f"cost model's onboarding, and the cold-start stack starts, runs the Stripe-on one "
        f"and makes the waiting executions the API calls need; the entry points' AWS calls "
        f"are then recorded from the built package. Everything timed runs alone after that "
        f"(the idle cold-start stack uses no CPU meanwhile). `make bench` prints each step "
        f"with the seconds since it started, on stderr.",
        f"**Cold start**: wall time, from spawn to exit, of a fresh `python` process that "
        f"imports `app` and calls one handler with a representative event against a local "
        f"stack of its own (Stripe on); median of {args.runs} runs; the ratio is the median over "
        f"the runs of app time / baseline time of the same run. The untimed recording pass "
        f"just before (below) is the warm-up: it has run every entry point once from the same "
        f"files against the same stack. "
        f"Both run from the package as `make package` builds it "
        f"(`scripts.deploy.package.build`, the zips a deploy uploads, with their unchecked-hash "
        f".pyc files), unzipped as on Lambda: deployment.zip (the /var/task equivalent), "
        f"layer-deployment.zip (/opt/python/lib/python3.11/site-packages, /opt/python), then "
        f"the runtime's boto3/botocore and their dependencies (precompiled, as in the "
        f"runtime); `-S`, so no other site-packages; `-B`, as /var/task is read-only. Each "
        f"function's environment is its own in the built template.json (SAM Globals, then "
        f"the function's variables, Ref/GetAtt resolved to the local stack's resources), "
        f"pointed at the local stack. The task events are the Lambda inputs of a real "
        f"execution of statemachine.json (its history) with a fresh tenant each run, and the "
        f"tasks run in the order of the execution, so each finds the record the previous one "
        f"left; the trigger's event is tests/events/post_confirmation.json with a fresh user. "
        f"The API handler is called as Lambda calls it: `app.app(event, context)` with an API "
        f"Gateway proxy event for `POST /tenant/finalize` carrying the task token of a real "
        f"waiting execution, so Chalice's routing and request object run (`chalice local` "
        f"would add a web server Lambda does not have). The baseline is a fresh process of a "
        f"function that ships nothing (boto3 and its dependencies from the runtime only) "
        f"that imports boto3 and replays, with plain clients, the AWS calls the app's handler "
        f"made for another tenant (recorded in an untimed pass; the Stripe task's Stripe "
        f"request is replayed with urllib); app and baseline alternate who goes first. Both "
        f"processes also time their full (generation 2) garbage collections with "
        f"`gc.callbacks`, reported where a target is missed. The "
        f"Stripe task talks to localstripe (`scripts.local.stripe_server`, started by the "
        f"stack) with the key read from the local Secrets Manager.{compared}",
        f"**Import cost**: `python -X importtime -c 'import app'` in the same layout, median "
        f"per module over {args.import_runs} runs; cumulative ms for the direct imports of "
        f"app.py, self ms for the slowest modules. Whether `stripe` is imported is also "
        f"checked in every cold-start process (`'stripe' in sys.modules` after the handler). "
        f"\"boto3 already imported\" is `python -X importtime -c 'import boto3; import app'`:"
        f" app's subtree then holds only what the app's import adds to a process that "
        f"imports boto3 anyway, as every function's does.",
        f"**Package**: `scripts.deploy.package.build(\"{pkg['stage']}\", ...)` into a "
        f"temporary directory, as `make package STAGE={pkg['stage']}` builds it (`chalice "
        f"package --merge-template`, offline apart from pip's package registry, then .pyc "
        f"files added to both zips); sizes as written, unzipped = the sum of the files' "
        f"sizes. requirements.txt pins boto3/botocore, so the layer ships them: the subscriber "
        f"store calls SES's tenant API (2025), which the Lambda runtime's own SDK may lack; "
        f"the boto3 row times importing it and building the store's clients in fresh "
        f"processes from the layer and from the runtime's copy alone. Targets, ours: the "
        f"function zip under {limit(FUNCTION_ZIP_TARGET)} (it holds only the app, chalicelib "
        f"and Chalice's runtime, and is what changes with every edit: dependencies belong in "
        f"the layer); the whole package under {limit(ZIPPED_TARGET)} zipped and "
        f"{limit(UNZIPPED_TARGET)} unzipped (Lambda's limits: 50 MB zipped for a direct "
        f"upload, 250 MB unzipped for a function and its layers), room for the SDK and its "
        f"bytecode, while a heavy library shipped by mistake would trip them well before "
        f"Lambda refuses the upload.",
        f"**Scale**: `scripts.bench.load` against a stack of its own with "
        f"`LOCAL_ENFORCE_SES_QUOTAS=1` (one SES list per account, 20 topics a list, 10,000 SES "
        f"tenants) in the default mode, subscriber-store: {args.tenants} sign-ups by 32 "
        f"clients, each confirmed and approved over HTTP (a decision the API answers 503 "
        f"with `Retry-After` is sent again after it, as a client should: one Python process "
        f"running {args.tenants} executions is at times slower to accept a connection than "
        f"the route's budget allows); the run checks each record, its outcome event and its "
        f"own SES tenant (`--tenants`).",
        "**Subscribers**: `scripts.bench.subscribers` on a stack of its own: 50 clients add "
        "the same 10 emails at once to one tenant; then another, approved and signed in, "
        "imports 10 calls of 1,000 rows (`POST /me/subscribers/import`). moto reports no "
        "real consumed capacity, so the write units are counted by DynamoDB's rules from the "
        "items as stored, in the transactions the import makes (each call's rows, 99 a "
        "transaction with the counter: 11 a call of 1,000), against the indexes template.json "
        "declares: a write costs 1 unit per KB started of its item (attribute names and "
        "values; an update, the larger of before and after), twice in a transaction (prepare "
        "and commit); each global secondary index it changes, 1 unit per KB of the index entry "
        "(table key, index key, projected attributes), once, not doubled, as DynamoDB applies "
        "a transaction's changes to its indexes after the commit; an entry left as it was "
        "costs nothing (the counter's update changes no index). So a subscriber under 1 KB, "
        "as the bench's are, costs 2 (its put) + 1 (its `bySubscribedAt` entry), and each "
        "transaction 2 more (the counter). The local stack's times grow with the table (moto "
        "copies it to roll a transaction back, one request at a time); DynamoDB's do not, so "
        "the 50 concurrent adds run first, on another tenant. Each of the 50 clients behaves "
        "as the API asks: on a 503 (a route's time budget ran out while it waited its turn) "
        "it waits the `Retry-After` and sends the same add again, up to 5 tries; the answers "
        "are each client's last, the retries are counted; the count must be exactly 10 and "
        "every add answered 200 or 201.",
        f"**Trigger latency**: one process imports `app` and calls `post_confirmation` "
        f"{args.trigger_calls + 1} times with fresh users, one call every "
        f"{args.trigger_interval * 2:.2f} s, each followed by a plain StartExecution (same "
        f"pace) for comparison; the first call is cold and reported apart. Each call starts a "
        f"real execution that the local stack runs.",
        f"**Throughput**: `scripts.bench.load.LoadRun` on a fresh local stack with Stripe on: "
        f"N clients sign up and confirm at once, N = the concurrency ({concurrency}; at 1, "
        f"five sign-ups one after another); every onboarding is approved. Sign-up->awaiting "
        f"is from the client's sign-up call to the engine's TaskScheduled timestamp of the "
        f"wait; approve->active from the POST to the execution's stop date. Sign-ups/s is "
        f"sign-ups over the time until the last one waits. The local stack runs moto and "
        f"every Lambda in one Python process on this machine: these are its limits, not "
        f"AWS's.",
        f"**Memory sweep**: `scripts.bench.memory`, on the cold-start stack from the same "
        f"unzipped package: every function (both Cognito triggers; the tasks of an "
        f"execution in its order; the API deciding, `POST /tenant/finalize`, and listing, "
        f"`GET /tenants`; the offboarding tasks, with the events of a real offboarding run, "
        f"on the tenant the onboarding tasks just made active; the reconciler) as one "
        f"fresh process per invocation, at {'/'.join(str(s) for s in bench_memory.SIZES)} MB, "
        f"sizes interleaved within each of {args.memory_runs} runs (`--memory-runs`), median. "
        f"The process and its children are held to Lambda's CPU share of the size, size / "
        f"{bench_memory.FULL_CORE_MB} MB of one core (Lambda's documentation: 1,769 MB is one "
        f"vCPU), by a cgroup v1 cpu controller group: cpu.cfs_quota_us = 100000 x size / "
        f"{bench_memory.FULL_CORE_MB} per 100000 us period, joined before Python starts. Cold = "
        f"from the process's start to the end of its first handler call (interpreter, imports, "
        f"clients, the handler's calls against the local stack); warm = the same event again "
        f"in the same process (every handler is idempotent). Each call gets a context as "
        f"Lambda's, its time left counting down from the function's own timeout, so its calls "
        f"keep to the budget they would have in Lambda; a call that runs out of it fails, "
        f"timed until then and counted as failed at that size. Not included: Lambda's own "
        f"start (code download, sandbox) and TLS to AWS's endpoints (the local stack is plain "
        f"HTTP): in an account a cold start is longer by both. Cost per 1,000 onboardings = "
        f"each function once per approved onboarding (the reconciler, the listing and the "
        f"offboarding tasks excepted: they run on a schedule, when an admin looks, and once in "
        f"a tenant's life) at $0.20 per 1M requests and $0.0000166667 per GB-second for the measured "
        f"duration, with every invocation cold (an upper bound: Lambda bills the init phase) "
        f"or every one warm.",
        "**Cost**: one happy-path onboarding (approved) on a local stack with Stripe off and "
        "one with Stripe on; from its `GetExecutionHistory`, state transitions = "
        "`*StateEntered` events (what Standard workflows bill) and Lambda invocations = "
        "`LambdaFunctionScheduled` + `TaskScheduled` of `lambda:invoke.waitForTaskToken`, plus "
        "the Cognito trigger and the API call (one each per onboarding). List prices "
        "(us-east-1, x86, no free tier): Step Functions Standard $0.025 per 1,000 state "
        f"transitions; Lambda $0.20 per 1M requests and $0.0000166667 per GB-second at "
        f"the mean of the functions' MemorySize ({'/'.join(str(m) for m in memory)} MB in the "
        f"built template.json; the memory sweep prices each at its own size) and an "
        f"**assumed** {bench_flow.ASSUMED_DURATION_S * 1000:.0f} ms billed per invocation "
        f"(the local tasks take "
        + ", ".join(f"{x['localTaskMedianMs']:.0f} ms" for x in r["cost"] if x["localTaskMedianMs"])
        + " median, warm and in process; cold starts and real network latency add to it). "
        "Waiting for the admin costs nothing in a Standard workflow. Not included: API "
        "Gateway ($3.50 per 1M REST requests, one per onboarding), DynamoDB, SES, "
        "EventBridge ($1 per 1M events), Cognito.",
    ]


def memory_curve(memory: dict[str, Any] | None) -> list[str]:
    """The sweep as a table: each function's cold invocation at each size."""
    if not memory or not memory.get("rows"):
        return []
    sizes = memory["sizes"]
    header = ["Function"] + [f"{size} MB" for size in sizes] + ["Chosen", "Target"]
    lines = ["## Memory sweep: cold invocation (ms) at each size's CPU share", "",
             f"Median of {memory['runs']} runs; each size's share of one core is "
             f"size / {bench_memory.FULL_CORE_MB} MB, enforced with a CPU quota (see How "
             "each figure is measured). The chosen size is `lambda_memory_size` in "
             "`.chalice/config.json`. \"(n failed)\": n of the cold calls at that size failed "
             "as Lambda would report it (its time budget spent, say).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in memory["rows"]:
        failed = row.get("failed", {})
        cells = [row["function"]] + [
            str(row["coldMs"].get(str(size), "-"))
            + (f" ({failed[str(size)]} failed)" if str(size) in failed else "") for size in sizes]
        cells += [f"{row['chosenMb']} MB", f"<= {row['targetMs']}" if row["targetMs"] else ""]
        lines.append("| " + " | ".join(cells) + " |")
    cost = memory["costPerThousandAllAt"]
    lines.append("| Lambda $ per 1,000 onboardings, cold / warm | " + " | ".join(
        price_pair(cost[str(size)], " / ", dollar="") for size in sizes)
        + " | | |")
    return lines + [""]


def price_pair(cost: dict[str, float] | None, between: str, dollar: str = "$") -> str:
    """Cold and warm prices of 1,000 onboardings; "-" where a size has no complete sample."""
    if cost is None:
        return "-"
    return f"{dollar}{cost['cold']:.4f}{between}{dollar}{cost['warm']:.4f}"


def write_doc(rows, r, args, info, elapsed: float) -> None:
    import json

    samples = {f"{row['entry']} ({row['layout']}{', beside the comparison' if side else ''})":
               {"appMs": row["appSamplesMs"], "baselineMs": row["baselineSamplesMs"],
                "medianFullGcMs": {"app": round(row["appFullGcMs"], 1),
                                   "baseline": round(row["baselineFullGcMs"], 1)}}
               for row, side in [(row, False) for row in r["cold"] + r.get("coldOther", [])]
               + [(row["reference"], True) for row in r.get("coldOther", [])]}
    text = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`scripts/bench/`); run it again to refresh this page. "
        "Figures are from one machine and one run: compare ratios, not absolute times, "
        "across machines.",
        "",
        "## Machine",
        "",
        f"- date: {info['date']}",
        f"- CPU: {info['cpu']}, `nproc` {info['nproc']}, memory {info['memory']}",
        f"- Python {info['python']}, {info['os']}",
        f"- load average (1, 5, 15 min) at start: {info['load']}; at the end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (the bench's own processes count in it)",
        f"- commit: {info['commit']}",
        f"- `make bench` took {elapsed:.0f} s "
        f"(`BENCH_ARGS`: `{' '.join(sys.argv[1:]) or 'none'}`)",
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
    ]
    text += memory_curve(r.get("memory"))
    found = notes(r, args)
    if found:
        text += ["## Targets missed, and why", ""] + [f"- {n}" for n in found] + [""]
    text += ["## How each figure is measured", ""] + [f"- {m}" for m in methodology(r, args)]
    text += ["", "## Raw cold-start samples (ms)", "",
             "Wall time of each run's app and baseline process, in run order; and the median "
             "time each spent in full (generation 2) garbage collections.", "", "```json",
             "{", ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in samples.items()),
             "}", "```", ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(text) + kept_sections())


# Sections another bench writes into DOC (its figures pasted there): kept as they are.
KEPT_SECTIONS = ("## The admin console with 1,000 tenants",)  # python -m scripts.bench.console


def kept_sections() -> str:
    """Each of KEPT_SECTIONS as DOC holds it now, up to the next section."""
    if not DOC.exists():
        return ""
    current = DOC.read_text()
    kept = []
    for heading in KEPT_SECTIONS:
        start = current.find(heading + "\n")
        if start != -1:
            end = current.find("\n## ", start + len(heading))
            kept.append(current[start:] if end == -1 else current[start:end + 1])
    return "".join("\n" + section.rstrip("\n") + "\n" for section in kept)


# --- the run ----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Untimed work side by side, timed work alone.

    1. untimed, at once: the package is built (scripts.deploy.package.build) and
       unzipped; a Stripe-off local stack runs the one onboarding of its cost
       model; the cold-start stack (Stripe on) starts, runs the Stripe-on
       cost-model onboarding (whose history gives the tasks' events) and makes
       the waiting executions the API runs need; then each entry point's AWS
       calls are recorded from the unzipped package (the cold starts' warm-up).
       Only event counts come out of this step, no timing;
    2. import cost, alone (the cold-start stack waits idle, using no CPU);
    3. a local stack, Stripe on: throughput;
    4. back on the cold-start stack: cold starts, then trigger latency.
    """
    from concurrent.futures import ThreadPoolExecutor

    results: dict[str, Any] = {}
    workdir = bench_package.new_workdir()
    try:
        with contextlib.ExitStack() as stacks:
            progress("package build (scripts.deploy.package.build), alongside two local "
                     "stacks starting: Stripe off (cost model) and Stripe on (cold starts)")
            with ThreadPoolExecutor(3) as pool:
                stripe_off = pool.submit(_stripe_off_cost, workdir)
                cold_starting = pool.submit(
                    cold_stack, workdir, stacks, bench_cold.tokens_needed(args.runs)
                    + bench_memory.tokens_needed(args.memory_runs))
                package = bench_package.build_package(workdir / "build")
                results["package"] = package
                progress("package built; unzipping it as Lambda lays it out"
                         + (" (and without .pyc)" if args.compare_without_pyc else ""))
                layout = bench_package.LambdaLayout(workdir / "layout", package)
                without_pyc_build = (pool.submit(bench_package.LambdaLayout, workdir / "layout-no-pyc",
                                                 package, without_pyc=True)
                                     if args.compare_without_pyc else None)
                stack, counts, history, tokens = cold_starting.result()
                progress("cold-start stack ready: recording each entry point's AWS calls")
                entries = bench_cold.prepare_cold_starts(
                    stack.outputs, stack.state_dir, history, args.runs, layout,
                    package["template"], tokens)
                results["cost"] = [stripe_off.result(), counts]
                without_pyc = without_pyc_build.result() if without_pyc_build else None

            progress("import cost of `import app`")
            results["imports"] = bench_package.import_cost(layout, args.import_runs)
            progress("boto3/botocore from the layer or the runtime")
            results["sdk"] = bench_package.sdk_cost(layout, args.import_runs)
            results["importsAfterBoto3"] = bench_package.import_cost(
                layout, args.import_runs, prelude="import boto3")

            progress("local stack, Stripe on: throughput")
            with bench_flow.bench_stack(workdir, stripe=True, name="stack-throughput") as flow_stack:
                results["throughput"] = []
                for concurrency in args.concurrency:
                    progress(f"throughput: {concurrency} concurrent sign-ups")
                    results["throughput"].append(
                        bench_flow.throughput(flow_stack, concurrency, max(concurrency, 5))
                    )

            if args.tenants:
                from scripts.bench.load import run_with_own_stack

                progress(f"scale: {args.tenants} tenants onboarded under SES's quotas")
                results["scale"] = run_with_own_stack(
                    args.tenants, 0, False, 3600, 32, LOCAL_ENFORCE_SES_QUOTAS="1")
            progress("subscribers: 10,000 imported in 10 calls; 50 concurrent adds")
            results["subscribers"] = bench_subscribers.run_with_own_stack()

            progress("cold starts, on the Stripe-on stack started first")
            others = ((without_pyc, (bench_cold.STRIPE_ENTRY,)),) if without_pyc else ()
            results["cold"], results["coldOther"] = bench_cold.measure_cold_starts(
                entries, args.runs, progress, other_layouts=others,
                other_runs=args.compare_runs)
            if args.memory_runs:
                reason = bench_memory.unavailable()
                if reason:
                    results["memory"] = {"unavailable": reason}
                else:
                    progress("memory sweep: each function cold at each size's CPU share")
                    sweep = bench_memory.Sweep(entries)
                    sweep.run(args.memory_runs, progress)
                    results["memory"] = bench_memory.summarize(sweep, package["template"])
            progress(f"trigger latency: {args.trigger_calls} warm calls")
            results["trigger"] = bench_cold.measure_trigger_latency(
                stack.outputs, args.trigger_calls, args.trigger_interval, layout,
                package["template"],
            )
        progress("done")
        # the sizes differ by function: the cost model takes their mean
        memory = statistics.mean(bench_memory.chosen_sizes(package["template"]).values())
        for counts in results["cost"]:
            counts["cost"] = bench_flow.cost_per_thousand(counts, memory)
    except BaseException:
        progress(f"failed; logs and files kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def _stripe_off_cost(workdir: Path) -> dict[str, Any]:
    with bench_flow.bench_stack(workdir, stripe=False, name="stack-stripe-off") as stack:
        counts, _ = bench_flow.one_onboarding(stack)
    return counts


def cold_stack(workdir: Path, stacks: contextlib.ExitStack, tokens: int):
    """The Stripe-on stack of the cold starts, left running (``stacks`` stops it);
    its first onboarding (cost-model counts, execution history); and ``tokens``
    executions waiting for the API's runs."""
    from scripts.bench.load import LoadRun

    stack = stacks.enter_context(bench_flow.bench_stack(workdir, stripe=True, name="stack-cold"))
    counts, history = bench_flow.one_onboarding(stack)
    waiting = bench_cold.waiting_executions(LoadRun(stack.outputs, stack.state_dir, 8), tokens)
    return stack, counts, history, waiting


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7,
                        help="cold-start runs per entry point (median; at least 5)")
    parser.add_argument("--import-runs", type=int, default=5,
                        help="runs of `python -X importtime -c 'import app'` (median)")
    parser.add_argument("--compare-runs", type=int, default=3,
                        help="runs of the Stripe task from the package without .pyc")
    parser.add_argument("--trigger-calls", type=int, default=50,
                        help="warm post_confirmation calls for p50/p99")
    parser.add_argument("--trigger-interval", type=float, default=0.1,
                        help="seconds per call (handler and plain call alternate)")
    parser.add_argument("--concurrency", default="1,10,50",
                        help="comma-separated concurrent sign-ups for throughput")
    parser.add_argument("--memory-runs", type=int, default=3,
                        help="runs of the memory sweep (each function cold at 128-1769 MB; "
                             "0: skip)")
    parser.add_argument("--tenants", type=int, default=1000,
                        help="tenants onboarded under SES's quotas for the scale figure (0: skip)")
    parser.add_argument("--no-compare", dest="compare_without_pyc", action="store_false",
                        help="skip the Stripe task's cold start from the package without .pyc")
    parser.add_argument("--no-write", action="store_true",
                        help=f"print only; do not rewrite {DOC.relative_to(PROJECT_DIR)}")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    info = machine()
    results = run(args)
    results["machine"] = info
    elapsed = time.monotonic() - STARTED
    rows = build_rows(results, args)
    print()
    print(f"tenant-onboarding benchmarks, {info['date']}: {info['cpu']}, nproc {info['nproc']}, "
          f"Python {info['python']}")
    print(text_table(rows))
    for note in notes(results, args):
        print("\n* " + note.replace("**", ""))
    if not args.no_write:
        write_doc(rows, results, args, info, elapsed)
        print(f"\nwritten to {DOC.relative_to(PROJECT_DIR)}; took {elapsed:.0f} s")
    else:
        print(f"\ntook {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
