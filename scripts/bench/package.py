"""The deployment package and the app's import cost (for report.py).

The package is what ``make package`` builds and a deploy submits:
``scripts.deploy.package.build()`` into a temporary directory (nothing is
left in the repository's build/), i.e. template.json, deployment.zip (app.py,
chalicelib, Chalice's runtime) and layer-deployment.zip (requirements.txt's
packages), both zips with compiled bytecode. The cold-start and import-cost
runs import it unzipped and laid out as Lambda lays it out: the function zip
first (/var/task), then the layer (/opt/python/lib/python3.11/site-packages,
/opt/python), then the runtime's own boto3/botocore and their dependencies
(precompiled, as in the runtime), and no other site-packages.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

MB = 1024 * 1024
PACKAGE_STAGE = "dev"  # what `make package STAGE=dev` builds; the zips are the same for any stage
# What the Lambda Python runtime already has: never shipped, imported from the venv.
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3")
_LAYER_PREFIX = re.compile(r"^python/(lib/python3\.\d+/site-packages/)?")


def build_package(workdir: Path) -> dict[str, Any]:
    """``scripts.deploy.package.build`` into ``workdir``; what it made, and its sizes."""
    from scripts.deploy.package import build

    template_path = build(PACKAGE_STAGE, out_dir=workdir)
    template = json.loads(template_path.read_text())
    function_zip = workdir / "deployment.zip"
    layer_zip = workdir / "layer-deployment.zip"
    functions = {
        logical_id: spec["Properties"] for logical_id, spec in template["Resources"].items()
        if spec.get("Type") == "AWS::Serverless::Function"
    }
    zips = {"function": _zip_sizes(function_zip), "layer": _zip_sizes(layer_zip)}
    result = {
        "stage": PACKAGE_STAGE,
        "templatePath": template_path,
        "template": template,
        "functionZip": function_zip,
        "layerZip": layer_zip,
        "function": zips["function"],
        "layer": zips["layer"],
        "zippedBytes": sum(z["bytes"] for z in zips.values()),
        "unzippedBytes": sum(z["unzippedBytes"] for z in zips.values()),
        "pycZippedBytes": sum(z["pycBytes"] for z in zips.values()),
        "shipsBoto": sorted(set(zips["function"]["shipsBoto"]) | set(zips["layer"]["shipsBoto"])),
        "shipsRuntime": sorted(set(zips["function"]["shipsRuntime"])
                               | set(zips["layer"]["shipsRuntime"])),
        "memoryMb": sorted({p.get("MemorySize") for p in functions.values()} - {None}),
        "functions": len(functions),
        "biggest": _biggest_packages(layer_zip),
    }
    return result


def _zip_sizes(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    tops = {_LAYER_PREFIX.sub("", i.filename).split("/")[0] for i in infos}
    return {
        "bytes": path.stat().st_size,
        "unzippedBytes": sum(i.file_size for i in infos),
        "files": sum(not i.is_dir() for i in infos),
        "pycFiles": sum(i.filename.endswith(".pyc") for i in infos),
        "pycBytes": sum(i.compress_size for i in infos if i.filename.endswith(".pyc")),
        "shipsBoto": sorted(tops & {"boto3", "botocore"}),
        "shipsRuntime": sorted(tops & set(RUNTIME_PACKAGES)),
    }


def _biggest_packages(path: Path) -> list[dict[str, Any]]:
    """Compressed bytes per top-level package of a zip, biggest first."""
    sizes: dict[str, int] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            top = _LAYER_PREFIX.sub("", info.filename).split("/")[0]
            if top.endswith(".dist-info"):
                top = "*.dist-info"
            sizes[top] = sizes.get(top, 0) + info.compress_size
    ordered = sorted(sizes.items(), key=lambda kv: -kv[1])
    return [{"name": name, "bytes": size} for name, size in ordered[:6]]


class LambdaLayout:
    """The built zips unzipped as Lambda lays them out, and how to run Python there.

    ``without_pyc``: the same, with every __pycache__ the zips brought removed:
    what a cold start pays when the package ships sources only (Lambda cannot
    write .pyc files: /var/task and /opt are read-only).
    """

    def __init__(self, workdir: Path, package: dict[str, Any], without_pyc: bool = False) -> None:
        self.without_pyc = without_pyc
        self.package_layer = package["layerZip"]
        self.task = workdir / "var-task"
        self.layer = workdir / "opt"
        self.runtime = workdir / "var-runtime"
        for zip_path, tree in ((package["functionZip"], self.task),
                               (package["layerZip"], self.layer)):
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(tree, [
                    name for name in archive.namelist()
                    if not (without_pyc and "__pycache__/" in name)
                ])
        self.runtime.mkdir()
        for name in RUNTIME_PACKAGES:
            module = __import__(name)
            source = Path(str(module.__file__))
            source = source.parent if source.name == "__init__.py" else source
            (self.runtime / source.name).symlink_to(source)

    @property
    def name(self) -> str:
        return "package without .pyc" if self.without_pyc else "package"

    @property
    def cwd(self) -> Path:
        return self.task

    def python(self) -> list[str]:
        # -S: no site-packages but these; -B: /var/task is read-only, no .pyc written
        return [sys.executable, "-S", "-B"]

    @property
    def baseline_cwd(self) -> Path:
        return self.runtime

    def baseline_env(self) -> dict[str, str]:
        """A function that ships nothing: boto3 and its dependencies from the runtime."""
        return {"PYTHONPATH": str(self.runtime)}

    @property
    def layer_site(self) -> Path:
        return (self.layer / "python" / "lib"
                / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages")

    def env(self) -> dict[str, str]:
        paths = [self.task, self.layer_site, self.layer / "python", self.runtime]
        return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def import_cost(layout: LambdaLayout, runs: int = 5, prelude: str = "") -> dict[str, Any]:
    """``python -X importtime -c 'import app'``: median per module over ``runs``.

    ``prelude``: code run first, e.g. "import boto3": what it imports is then
    not counted in app's.
    """
    per_module: dict[str, list[dict[str, Any]]] = {}
    stripe_seen = False
    totals: list[int] = []
    for _ in range(runs):
        done = subprocess.run(
            layout.python() + ["-X", "importtime", "-c", f"{prelude}\nimport app"],
            cwd=layout.cwd, env={"PATH": os.environ.get("PATH", ""), **layout.env()},
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"import app failed:\n{done.stderr[-2000:]}")
        parsed: list[tuple[str, int, int, int]] = []
        for line in done.stderr.splitlines()[1:]:
            if not line.startswith("import time:"):
                continue
            own, cumulative, name = line[len("import time:"):].split("|")
            parsed.append((name.strip(), (len(name) - len(name.lstrip())) // 2,
                           int(own), int(cumulative)))
        # app's subtree: the lines after the previous top-level import, up to app
        end = next(i for i, p in enumerate(parsed) if p[0] == "app" and p[1] == 0)
        begin = max((i for i in range(end) if parsed[i][1] == 0), default=-1) + 1
        for module, depth, self_us, cumulative_us in parsed[begin:end + 1]:
            per_module.setdefault(module, []).append(
                {"self": self_us, "cumulative": cumulative_us, "direct": depth == 1}
            )
            if module == "stripe" or module.startswith("stripe."):
                stripe_seen = True
        totals.append(parsed[end][3])
    rows: list[dict[str, Any]] = []
    for module, samples in per_module.items():
        rows.append({
            "module": module,
            "selfMs": statistics.median(s["self"] for s in samples) / 1000,
            "cumulativeMs": statistics.median(s["cumulative"] for s in samples) / 1000,
            "direct": samples[0]["direct"],
        })
    direct = sorted((r for r in rows if r["direct"]), key=lambda r: -r["cumulativeMs"])
    by_self = sorted(rows, key=lambda r: -r["selfMs"])
    return {
        "layout": layout.name,
        "runs": runs,
        "totalMs": statistics.median(totals) / 1000,
        "modules": len(per_module),
        "direct": direct[:6],
        "bySelf": by_self[:6],
        "stripeImported": stripe_seen,
    }


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tenant-onboarding-bench-"))


SDK_PROBE = (
    "import time\n"
    "began = time.perf_counter()\n"
    "import boto3, botocore\n"
    "session = boto3.session.Session(region_name='us-east-1')\n"
    "for service in ('sesv2', 'dynamodb'):\n"
    "    session.client(service)\n"
    "assert hasattr(session.client('sesv2'), 'create_tenant')\n"
    "print(time.perf_counter() - began, botocore.__file__)\n"
)


def sdk_cost(layout: LambdaLayout, runs: int = 7) -> dict[str, Any]:
    """What shipping boto3/botocore in the layer costs a cold start: importing
    them and building the clients the subscriber store needs, in fresh
    processes, from the layer (/opt, as deployed) and from the runtime's copy
    alone, alternated. The runtime's copy here is the dev one (with the
    tenant API); a real runtime's may lack it, which is why the layer has one."""
    timings: dict[str, list[float]] = {"layer": [], "runtime": []}
    origins: dict[str, str] = {}
    paths = {"layer": layout.env()["PYTHONPATH"], "runtime": str(layout.runtime)}
    for _ in range(runs):
        for kind, path in paths.items():
            done = subprocess.run(layout.python() + ["-c", SDK_PROBE], cwd=layout.cwd,
                                  env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": path},
                                  capture_output=True, text=True, check=True)
            seconds, origin = done.stdout.split()
            timings[kind].append(float(seconds))
            origins[kind] = origin
    shipped = [name for name in zipfile.ZipFile(layout.package_layer).namelist()
               if re.search(r"/(boto3|botocore|s3transfer|jmespath|dateutil)/", name)]
    return {
        "runs": runs,
        "layerMs": round(statistics.median(timings["layer"]) * 1000, 1),
        "runtimeMs": round(statistics.median(timings["runtime"]) * 1000, 1),
        "fromLayer": origins["layer"].startswith(str(layout.layer)),
        "shippedFiles": len(shipped),
    }
