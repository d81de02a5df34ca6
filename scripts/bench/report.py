"""``make bench``: cold starts, import cost, package size, trigger latency,
throughput and cost of the onboarding, measured on this machine.

    make bench                                  # everything, writes docs/benchmarks.md
    make bench BENCH_ARGS="--runs 9 --no-write" # more runs, print only

Not a test: it prints one table (each timing a median, with its baseline
from the same run) and writes the same table, the machine and the date to
docs/benchmarks.md. Targets that are missed are marked, not failed on; the
exit code is non-zero only when a measurement could not be made.

Pieces: bench_package.py (chalice package, import cost), bench_cold.py (cold
starts, trigger latency), bench_flow.py (local stacks, throughput, cost).
"""
import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from scripts.bench import cold as bench_cold, flow as bench_flow, package as bench_package
from scripts.deploy.template import PROJECT_DIR

DOC = PROJECT_DIR / "docs" / "benchmarks.md"
MB = 1024 * 1024
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- the machine ----------------------------------------------------------------------
def machine() -> Dict[str, str]:
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
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc,
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit,
    }


# --- the table ------------------------------------------------------------------------
def verdict(met: Optional[bool]) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def ratio(row: Dict[str, Any]) -> str:
    """x1.23; with a third decimal where two would hide which side of the target it is."""
    close = abs(row["ratio"] - row["target"]) < 0.005
    return f"x{row['ratio']:.3f}" if close else f"x{row['ratio']:.2f}"


def ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def size(value: int) -> str:
    return f"{value / MB:.2f} MB" if value >= 100 * 1024 else f"{value / 1024:.0f} KB"


def build_rows(r: Dict[str, Any], args: argparse.Namespace) -> List[List[str]]:
    """[area, measure, result, baseline or detail, target, verdict] per row."""
    rows: List[List[str]] = []

    # cold starts
    for row in r["cold"]:
        rows.append([
            "Cold start", row["entry"], ms(row["appMs"]),
            f"{ms(row['baselineMs'])} boto3 {row['baseline']}; {ratio(row)}"
            + ("; stripe imported" if row["stripeImported"] else ""),
            f"<= x{row['target']:.2f}", verdict(row["met"]),
        ])
    for row in r.get("coldOther", []):
        rows.append([
            "Cold start", f"{row['entry']} ({row['layout']})", ms(row["appMs"]),
            f"{ms(row['baselineMs'])} same baseline; {ratio(row)}",
            "(comparison)", "",
        ])

    # import cost
    imp = r["imports"]
    top = ", ".join(f"{m['module']} {m['cumulativeMs']:.1f}" for m in imp["direct"][:3])
    own = ", ".join(f"{m['module']} {m['selfMs']:.1f}" for m in imp["bySelf"][:3])
    rows.append(["Import", "import app: total", ms(imp["totalMs"]),
                 f"{imp['modules']} modules; direct imports (cumulative ms): {top}", "", ""])
    rows.append(["Import", "import app: slowest modules", "", f"self ms: {own}", "", ""])
    rows.append(["Import", "stripe in import app", "absent" if not imp["stripeImported"]
                 else "PRESENT", "stripe imported by the Stripe task only: "
                 + ("yes" if _stripe_only_on_stripe_path(r) else "NO"),
                 "absent", verdict(not imp["stripeImported"] and _stripe_only_on_stripe_path(r))])

    sh = r["shadowing"]
    rows.append(["Import", "import boto3 + one client, package on sys.path",
                 ms(sh["withPackageMs"]),
                 f"{ms(sh['runtimeOnlyMs'])} with the runtime's boto3 alone; the package "
                 f"ships {', '.join(sh['shadowed']) or 'none'} of the runtime's own packages, "
                 f"uncompiled", "", ""])

    # package
    pkg = r["package"]["configured"]
    layer_note = f" + layer {size(pkg['layerBytes'])}" if pkg["layerZip"] else " (no layer)"
    rows.append(["Package", "function zip (as configured)", size(pkg["functionBytes"]),
                 f"{pkg['functionFiles']} files{layer_note}; biggest: "
                 + ", ".join(f"{b['name']} {size(b['bytes'])}" for b in pkg["biggest"][:3]),
                 "< 1 MB", verdict(pkg["functionBytes"] < MB)])
    rows.append(["Package", "whole package (as configured)", size(pkg["totalBytes"]),
                 "boto3/botocore shipped: " + (", ".join(pkg["shipsBoto"]) or "no"),
                 "< 5 MB", verdict(pkg["totalBytes"] < 5 * MB and not pkg["shipsBoto"])])
    alt = r["package"]["withLayer"]
    if alt:
        rows.append(["Package", "with automatic_layer: true (not applied)",
                     f"{size(alt['functionBytes'])} + layer {size(alt['layerBytes'])}",
                     f"whole {size(alt['totalBytes'])}", "< 1 MB / < 5 MB",
                     "would be " + verdict(alt["functionBytes"] < MB and alt["totalBytes"] < 5 * MB)])

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


def _stripe_only_on_stripe_path(r: Dict[str, Any]) -> bool:
    return all(row["stripeImported"] == (row["handler"] == bench_cold.STRIPE_ENTRY)
               for row in r["cold"])


HEADER = ["Area", "Measure", "Result", "Baseline / detail", "Target", "Verdict"]


def text_table(rows: List[List[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows + [HEADER]) for i in range(len(HEADER))]
    widths[3] = min(widths[3], 70)

    def wrap(text: str, width: int) -> List[str]:
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


def markdown_table(rows: List[List[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the notes --------------------------------------------------------------------------
def notes(r: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    """What each figure is, and why a missed target is missed, from the figures."""
    out: List[str] = []
    cold = {row["handler"]: row for row in r["cold"]}
    other = r.get("coldOther", [])
    missed = [row for row in r["cold"] if not row["met"]]
    if missed:
        worst = ", ".join(f"{row['entry']} {ratio(row)} (target x{row['target']:.2f}, "
                          f"+{row['appMs'] - row['baselineMs']:.0f} ms)" for row in missed)
        out.append(f"**Cold-start targets missed**: {worst}. The app's process pays what the "
                   f"baseline pays plus `import app` (chalice and chalicelib, "
                   f"{r['imports']['totalMs']:.0f} ms median here, compiled from source as on "
                   f"Lambda) and, in the Stripe task, importing and building the Stripe client. "
                   f"It also pays for what the package ships that the runtime already has "
                   f"({', '.join(r['shadowing']['shadowed']) or 'nothing'}): it comes first on "
                   f"sys.path, uncompiled, so botocore imports it from there: boto3 and one "
                   f"client take {ms(r['shadowing']['withPackageMs'])} with the package on the "
                   f"path against {ms(r['shadowing']['runtimeOnlyMs'])} without. "
                   f"Single runs vary by tens of ms on this machine (every sample is in the "
                   f"JSON below), so ratios within about 0.05 of a target are within noise.")
    if other:
        compared = "; ".join(
            f"{row['entry']}: {ms(row['appMs'])} from the package as built "
            f"({ratio(cold[row['handler']])}), {ms(row['appMs'])} {row['layout']} ({ratio(row)})"
            .replace(f"{ms(row['appMs'])} from", f"{ms(cold[row['handler']]['appMs'])} from")
            for row in other if row["handler"] in cold)
        out.append(f"**The same entry points from other layouts**: {compared}. "
                   f"\"package, precompiled\" is the same package with .pyc files in it "
                   f"(`compileall`, unchecked-hash): Lambda cannot write them, /var/task and "
                   f"/opt being read-only, so without them every cold start compiles chalice's, "
                   f"the app's and (in the Stripe task) stripe's and requests' modules. \"venv\" "
                   f"is the dev virtualenv: .pyc files present, but `stripe` also imports "
                   f"`aiohttp` there (installed for localstripe, not shipped).")
    pkg = r["package"]
    if pkg["configured"]["functionBytes"] >= MB and pkg["withLayer"]:
        alt = pkg["withLayer"]
        out.append(f"**Function zip over 1 MB**: Chalice puts the dependencies "
                   f"(stripe alone is {size(pkg['configured']['biggest'][0]['bytes'])} "
                   f"compressed) in every function's zip. With `\"automatic_layer\": true` in "
                   f".chalice/config.json (measured on a copy, not applied) the function zip is "
                   f"{size(alt['functionBytes'])} and the layer {size(alt['layerBytes'])}, "
                   f"{size(alt['totalBytes'])} in all: both targets met.")
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
        out.append(
            f"**Trigger p99 over 100 ms**: a plain boto3 StartExecution against the same local "
            f"endpoint, interleaved with the handler's calls at the same pace, has p99 "
            f"{ms(t['rawP99Ms'])} (p50 {ms(t['rawP50Ms'])}, max {ms(t['rawMaxMs'])}) against the "
            f"handler's {ms(t['p99Ms'])} (p50 {ms(t['p50Ms'])}, max {ms(t['maxMs'])}): the tail "
            f"is the local stack's, not the handler's, whose median is "
            f"{t['p50Ms'] - t['rawP50Ms']:+.1f} ms from the plain call's. moto keeps every "
            f"execution in the one Python process that also serves the API calls and runs the "
            f"executions, and that process stalls now and then as its heap grows (tracing its "
            f"garbage collector while preparing this bench showed full collections of "
            f"0.3-0.4 s once a few hundred executions were held). It says nothing about "
            f"StartExecution on AWS.")
    return out


def methodology(r: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    memory = r["package"]["configured"]["memoryMb"]
    return [
        f"**Cold start**: wall time, from spawn to exit, of a fresh `python` process that "
        f"imports `app` and calls one handler with a representative event against a fresh "
        f"local stack (Stripe on); median of {args.runs} runs after one discarded warm-up; "
        f"the ratio is the median over the runs of app time / baseline time of the same run. "
        f"The task events are the Lambda inputs of a real execution of statemachine.json "
        f"(its history) with a fresh tenant each run, and the tasks run in the order of the "
        f"execution, so each finds the record the previous one left; the trigger's event is "
        f"tests/events/post_confirmation.json with a fresh user. The API handler is called as "
        f"Lambda calls it: `app.app(event, context)` with an API Gateway proxy event for "
        f"`POST /tenant/finalize` carrying the task token of a real waiting execution, so "
        f"Chalice's routing and request object run (`chalice local` would add a web server "
        f"Lambda does not have). The baseline is a fresh process of a function that ships "
        f"nothing (boto3 and its dependencies from the runtime only) that imports boto3 and "
        f"replays, with plain clients, the AWS calls the app's handler made for another "
        f"tenant (recorded in an untimed pass; the Stripe task's Stripe request is replayed "
        f"with urllib); app and baseline alternate who goes first. Both run from the "
        f"unzipped `chalice package` output laid out as on Lambda: function zip, layer, then "
        f"the runtime's boto3/botocore (precompiled, as in the runtime); `-S`, so no other "
        f"site-packages; `-B` and no .pyc in the package, as /var/task is read-only. The Stripe task talks to localstripe "
        f"(`scripts.local.stripe_server`, started by the stack) with the key read from the "
        f"local Secrets Manager (`provisioning.put_stripe_secret`).",
        "**Import cost**: `python -X importtime -c 'import app'` in the same layout, median "
        "per module over 5 runs; cumulative ms for the direct imports of app.py, self ms for "
        "the slowest modules. Whether `stripe` is imported is also checked in every cold-start "
        "process (`'stripe' in sys.modules` after the handler).",
        "**Package**: `chalice package --stage dev` on a temporary copy of the project "
        "(offline apart from pip's package registry); zip sizes as written. The Lambda runtime "
        "has boto3/botocore, so requirements.txt does not list them.",
        f"**Trigger latency**: one process imports `app` and calls `post_confirmation` "
        f"{args.trigger_calls + 1} times with fresh users, one call every "
        f"{args.trigger_interval * 2:.2f} s, each followed by a plain StartExecution (same "
        f"pace) for comparison; the first call is cold and reported apart. Each call starts a "
        f"real execution that the local stack runs.",
        f"**Throughput**: `scripts.bench.load.LoadRun` on a fresh local stack with Stripe on: "
        f"N clients sign up and confirm at once, N = the concurrency (at 1, five sign-ups one "
        f"after another); every onboarding is approved. Sign-up->awaiting is from the client's sign-up call to the engine's "
        f"TaskScheduled timestamp of the wait; approve->active from the POST to the "
        f"execution's stop date. Sign-ups/s is sign-ups over the time until the last one "
        f"waits. The local stack runs moto and every Lambda in one Python process on this "
        f"machine: these are its limits, not AWS's.",
        "**Cost**: one happy-path onboarding (approved) on a local stack with Stripe off and "
        "one with Stripe on; from its `GetExecutionHistory`, state transitions = "
        "`*StateEntered` events (what Standard workflows bill) and Lambda invocations = "
        "`LambdaFunctionScheduled` + `TaskScheduled` of `lambda:invoke.waitForTaskToken`, plus "
        "the Cognito trigger and the API call (one each per onboarding). List prices "
        "(us-east-1, x86, no free tier): Step Functions Standard $0.025 per 1,000 state "
        f"transitions; Lambda $0.20 per 1M requests and $0.0000166667 per GB-second at "
        f"{'/'.join(str(m) for m in memory)} MB (from the package's sam.json) and an "
        f"**assumed** {bench_flow.ASSUMED_DURATION_S * 1000:.0f} ms billed per invocation "
        f"(the local tasks take "
        + ", ".join(f"{x['localTaskMedianMs']:.0f} ms" for x in r["cost"] if x["localTaskMedianMs"])
        + " median, warm and in process; cold starts and real network latency add to it). "
        "Waiting for the admin costs nothing in a Standard workflow. Not included: API "
        "Gateway ($3.50 per 1M REST requests, one per onboarding), DynamoDB, SES, "
        "EventBridge ($1 per 1M events), Cognito.",
    ]


def write_doc(rows, r, args, info, elapsed: float) -> None:
    import json

    samples = {f"{row['entry']} ({row['layout']})":
               {"appMs": row["appSamplesMs"], "baselineMs": row["baselineSamplesMs"]}
               for row in r["cold"] + r.get("coldOther", [])}
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
        f"- load average at start: {info['load']}",
        f"- commit: {info['commit']}",
        f"- `make bench` took {elapsed:.0f} s "
        f"(`BENCH_ARGS`: `{' '.join(sys.argv[1:]) or 'none'}`)",
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
    ]
    found = notes(r, args)
    if found:
        text += ["## Targets missed, and why", ""] + [f"- {n}" for n in found] + [""]
    text += ["## How each figure is measured", ""] + [f"- {m}" for m in methodology(r, args)]
    text += ["", "## Raw cold-start samples (ms)", "", "```json",
             "{", ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in samples.items()),
             "}", "```", ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(text))


# --- the run ----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    workdir = bench_package.new_workdir()
    try:
        progress("chalice package (as configured, and with automatic_layer if it is off)")
        results["package"] = bench_package.package_step(workdir / "package")
        layout = bench_package.LambdaLayout(workdir / "layout", results["package"]["configured"])
        precompiled = bench_package.LambdaLayout(
            workdir / "layout-pyc", results["package"]["configured"], precompiled=True)

        progress("import cost of `import app`, and of the package to boto3")
        results["imports"] = bench_package.import_cost(layout)
        results["shadowing"] = bench_package.runtime_shadowing(layout)

        progress("local stack, Stripe on: cost model and throughput")
        with bench_flow.Stack(workdir, stripe=True, name="stack-throughput") as stack:
            counts, history = bench_flow.one_onboarding(stack)
            results["cost"] = [counts]
            results["throughput"] = []
            for concurrency in args.concurrency:
                progress(f"throughput: {concurrency} concurrent sign-ups")
                results["throughput"].append(
                    bench_flow.throughput(stack, concurrency, max(concurrency, 5))
                )

        progress("fresh local stack, Stripe on: cold starts and trigger latency")
        with bench_flow.Stack(workdir, stripe=True, name="stack-cold") as stack:
            results["cold"], results["coldOther"] = bench_cold.measure_cold_starts(
                stack.outputs, stack.state_dir, history, args.runs, layout, progress,
                other_layouts=((precompiled, (bench_cold.STRIPE_ENTRY, bench_cold.API)),
                               (bench_package.VenvLayout(), (bench_cold.STRIPE_ENTRY,))),
            )
            progress(f"trigger latency: {args.trigger_calls} warm calls")
            results["trigger"] = bench_cold.measure_trigger_latency(
                stack.outputs, args.trigger_calls, args.trigger_interval, layout,
            )

        progress("local stack, Stripe off: cost model")
        with bench_flow.Stack(workdir, stripe=False, name="stack-stripe-off") as stack:
            counts, _ = bench_flow.one_onboarding(stack)
            results["cost"].insert(0, counts)
        memory = results["package"]["configured"]["memoryMb"][0]
        for counts in results["cost"]:
            counts["cost"] = bench_flow.cost_per_thousand(counts, memory)
    except BaseException:
        progress(f"failed; logs and files kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9,
                        help="cold-start runs per entry point (median; at least 5)")
    parser.add_argument("--trigger-calls", type=int, default=150,
                        help="warm post_confirmation calls for p50/p99")
    parser.add_argument("--trigger-interval", type=float, default=0.1,
                        help="seconds per call (handler and plain call alternate)")
    parser.add_argument("--concurrency", default="1,10,100",
                        help="comma-separated concurrent sign-ups for throughput")
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
