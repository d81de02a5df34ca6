"""Deployment package and import cost of the app (for bench.py).

``chalice package`` runs on a temporary copy of the project (app.py,
chalicelib/, requirements.txt, .chalice/config.json): nothing is left in the
repository. The unzipped result is also what the cold-start runs import, laid
out as Lambda lays it out: the function zip first (/var/task), then the layer
(/opt/python), then the runtime's own boto3/botocore and their dependencies,
and no other site-packages.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from scripts.deploy.template import PROJECT_DIR

MB = 1024 * 1024
# What the Lambda Python runtime already has: never shipped, imported from the venv.
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3")


def _project_copy(into: Path, automatic_layer: Optional[bool] = None) -> Path:
    project = into / "project"
    project.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy2(PROJECT_DIR / "app.py", project / "app.py")
    shutil.copy2(PROJECT_DIR / "requirements.txt", project / "requirements.txt")
    shutil.copytree(PROJECT_DIR / "chalicelib", project / "chalicelib", ignore=ignore)
    if (PROJECT_DIR / "vendor").is_dir():
        shutil.copytree(PROJECT_DIR / "vendor", project / "vendor", ignore=ignore)
    (project / ".chalice").mkdir()
    for path in (PROJECT_DIR / ".chalice").glob("*.json"):  # config and policies only
        shutil.copy2(path, project / ".chalice" / path.name)
    if automatic_layer is not None:
        config_path = project / ".chalice" / "config.json"
        config = json.loads(config_path.read_text())
        config["automatic_layer"] = automatic_layer
        config_path.write_text(json.dumps(config, indent=2))
    return project


def automatic_layer_configured() -> bool:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    stage = config.get("stages", {}).get("dev", {})
    return bool(stage.get("automatic_layer", config.get("automatic_layer", False)))


def chalice_package(workdir: Path, automatic_layer: Optional[bool] = None) -> Dict[str, Any]:
    """Run ``chalice package --stage dev`` on a copy; sizes of what it made."""
    project = _project_copy(workdir, automatic_layer)
    out = workdir / "out"
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    chalice = Path(sys.executable).parent / "chalice"
    done = subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(out)],
        cwd=project, env=env, capture_output=True, text=True, timeout=240,
    )
    if done.returncode != 0:
        raise RuntimeError(f"chalice package failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    function_zip = out / "deployment.zip"
    layer_zip = out / "layer-deployment.zip"
    sam = json.loads((out / "sam.json").read_text())
    memory = sorted({
        r["Properties"].get("MemorySize") for r in sam["Resources"].values()
        if r.get("Type") == "AWS::Serverless::Function"
    } - {None})
    with zipfile.ZipFile(function_zip) as archive:
        names = archive.namelist()
    shipped_runtime = sorted({
        top for top in (n.split("/")[0] for n in names)
        if top in ("boto3", "botocore")
    })
    result = {
        "automaticLayer": bool(automatic_layer) if automatic_layer is not None
        else automatic_layer_configured(),
        "functionZip": function_zip,
        "functionBytes": function_zip.stat().st_size,
        "layerZip": layer_zip if layer_zip.exists() else None,
        "layerBytes": layer_zip.stat().st_size if layer_zip.exists() else 0,
        "functionFiles": len(names),
        "shipsBoto": shipped_runtime,
        "memoryMb": memory,
        "biggest": _biggest_packages(function_zip, layer_zip if layer_zip.exists() else None),
    }
    result["totalBytes"] = result["functionBytes"] + result["layerBytes"]
    return result


def _biggest_packages(*zips: Optional[Path]) -> List[Dict[str, Any]]:
    """Compressed bytes per top-level package across the zips, biggest first."""
    sizes: Dict[str, int] = {}
    for path in zips:
        if path is None:
            continue
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = re.sub(r"^python/lib/python3\.\d+/site-packages/", "", info.filename)
                top = name.split("/")[0]
                if top.endswith(".dist-info"):
                    top = "*.dist-info"
                sizes[top] = sizes.get(top, 0) + info.compress_size
    ordered = sorted(sizes.items(), key=lambda kv: -kv[1])
    return [{"name": name, "bytes": size} for name, size in ordered[:6]]


class LambdaLayout:
    """A directory tree laid out as Lambda would, and how to run Python in it."""

    def __init__(self, workdir: Path, package: Dict[str, Any], precompiled: bool = False) -> None:
        self.precompiled = precompiled
        self.task = workdir / "var-task"
        self.layer = workdir / "opt"
        self.runtime = workdir / "var-runtime"
        with zipfile.ZipFile(package["functionZip"]) as archive:
            archive.extractall(self.task)
        if package["layerZip"]:
            with zipfile.ZipFile(package["layerZip"]) as archive:
                archive.extractall(self.layer)
        self.runtime.mkdir()
        for name in RUNTIME_PACKAGES:
            module = __import__(name)
            source = Path(module.__file__)
            source = source.parent if source.name == "__init__.py" else source
            (self.runtime / source.name).symlink_to(source)
        if precompiled:  # what shipping .pyc files in the zips would give
            for tree in (self.task, self.layer):
                if tree.exists():
                    subprocess.run(
                        [sys.executable, "-m", "compileall", "-q", "-j", "0",
                         "--invalidation-mode", "unchecked-hash", str(tree)],
                        check=True, capture_output=True,
                    )

    @property
    def name(self) -> str:
        return "package, precompiled" if self.precompiled else "package"

    @property
    def cwd(self) -> Path:
        return self.task

    def python(self) -> List[str]:
        # -S: no site-packages but these; -B: /var/task is read-only, no .pyc
        return [sys.executable, "-S", "-B"]

    @property
    def baseline_cwd(self) -> Path:
        return self.runtime

    def baseline_env(self) -> Dict[str, str]:
        """A function that ships nothing: boto3 and its dependencies from the runtime."""
        return {"PYTHONPATH": str(self.runtime)}

    def env(self) -> Dict[str, str]:
        layer = self.layer / "python"
        paths = [self.task, layer / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                 / "site-packages", layer, self.runtime]
        return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


class VenvLayout:
    """The project's own virtualenv (it also holds the dev tools, aiohttp included)."""

    name = "venv"
    cwd = PROJECT_DIR
    baseline_cwd = PROJECT_DIR

    def baseline_env(self) -> Dict[str, str]:
        return {}

    def python(self) -> List[str]:
        return [sys.executable]

    def env(self) -> Dict[str, str]:
        return {}


def import_cost(layout: Any, runs: int = 5) -> Dict[str, Any]:
    """``python -X importtime -c 'import app'``: median per module over ``runs``."""
    per_module: Dict[str, List[Dict[str, int]]] = {}
    stripe_seen = False
    totals: List[int] = []
    for _ in range(runs):
        done = subprocess.run(
            layout.python() + ["-X", "importtime", "-c", "import app"],
            cwd=layout.cwd, env={"PATH": os.environ.get("PATH", ""), **layout.env()},
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"import app failed:\n{done.stderr[-2000:]}")
        parsed = []
        for line in done.stderr.splitlines()[1:]:
            if not line.startswith("import time:"):
                continue
            self_us, cumulative_us, name = line[len("import time:"):].split("|")
            parsed.append((name.strip(), (len(name) - len(name.lstrip())) // 2,
                           int(self_us), int(cumulative_us)))
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
    rows = []
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
        "totalMs": statistics.median(totals) / 1000,
        "modules": len(per_module),
        "direct": direct[:6],
        "bySelf": by_self[:6],
        "stripeImported": stripe_seen,
    }


def runtime_shadowing(layout: "LambdaLayout", runs: int = 9) -> Dict[str, Any]:
    """What the package costs a process that only uses boto3: packages it ships
    that the runtime also has come first on sys.path, without .pyc files."""
    layer_site = layout.layer / "python" / "lib" / (
        f"python{sys.version_info[0]}.{sys.version_info[1]}") / "site-packages"
    shadowed = sorted(
        name for name in RUNTIME_PACKAGES
        for tree in (layout.task, layer_site)
        if (tree / name).is_dir() or (tree / f"{name}.py").is_file()
    )
    code = ("import time; began = time.perf_counter()\n"
            "import boto3; boto3.session.Session(region_name='us-east-1').client('dynamodb')\n"
            "print(time.perf_counter() - began)")
    timings: Dict[str, List[float]] = {"package": [], "runtime": []}
    for _ in range(runs):
        for kind, env, cwd in (("package", layout.env(), layout.cwd),
                               ("runtime", layout.baseline_env(), layout.baseline_cwd)):
            done = subprocess.run(layout.python() + ["-c", code], cwd=cwd,
                                  env={"PATH": os.environ.get("PATH", ""), **env},
                                  capture_output=True, text=True, check=True)
            timings[kind].append(float(done.stdout.split()[-1]) * 1000)
    return {
        "shadowed": shadowed,
        "withPackageMs": statistics.median(timings["package"]),
        "runtimeOnlyMs": statistics.median(timings["runtime"]),
    }


def package_step(workdir: Path) -> Dict[str, Any]:
    """The package as configured, and, when it is not on, with automatic_layer."""
    configured = chalice_package(workdir / "configured")
    result = {"configured": configured, "withLayer": None}
    if not configured["automaticLayer"]:
        result["withLayer"] = chalice_package(workdir / "with-layer", automatic_layer=True)
    return result


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tenant-onboarding-bench-"))
