"""``make package STAGE=<stage>``: exactly what a deploy submits, with no AWS credentials.

    python -m scripts.deploy.package --stage dev      # -> build/dev/

Writes, under ``build/<stage>/``:
- ``template.json``: the Chalice app as ``chalice package`` emits it (SAM),
  merged with ``template.json`` of the project (everything else of the
  stage), with statemachine.json inserted as the state machine's
  definition, the stage's parameter defaults set (its contact-list mode
  and SES sender from .chalice/config.json) and every log group and layer
  given an explicit deletion policy;
- ``deployment.zip`` (app.py and chalicelib) and ``layer-deployment.zip``
  (requirements.txt's packages), each with compiled bytecode for Python 3.11
  beside its sources: Lambda's /var/task and /opt are read-only, so without
  it every cold start compiles every module it imports.

The deploy uploads the zips and submits this template as a change set.
"""
import argparse
import compileall
import contextlib
import fcntl
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.deploy import alarms as stage_alarms
from scripts.deploy import template as stack_template
from scripts.shared import PROJECT_DIR

LAMBDA_PYTHON = (3, 11)  # the runtime chalice package declares: python3.11
ZIPS = {"deployment.zip": "/var/task", "layer-deployment.zip": "/opt"}
# A fixed timestamp: the same sources give the same bytes, so an unchanged app
# uploads to the same S3 key and the change set shows nothing to do.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PackageError(RuntimeError):
    """Something the person packaging can fix; printed without a traceback."""


def build_dir(stage: str, project_dir: Path = PROJECT_DIR) -> Path:
    return project_dir / "build" / stage


def build(stage: str, out_dir: Path | None = None, project_dir: Path = PROJECT_DIR) -> Path:
    """Package ``stage`` into ``out_dir`` (default build/<stage>/); returns the template path."""
    if sys.version_info[:2] != LAMBDA_PYTHON:
        raise PackageError(
            f"packaging needs Python {'.'.join(map(str, LAMBDA_PYTHON))} (the Lambda runtime), "
            f"not {sys.version.split()[0]}: the bytecode it ships must match the runtime's"
        )
    if not (project_dir / "chalicelib" / "assets" / "manifest.json").exists():
        raise PackageError("the pages are not built (chalicelib/assets/): run make assets first "
                           "(make package and make deploy do)")
    stack_template.check_stage_name(stage)
    mode = stack_template.stage_contact_list_mode(stage, project_dir)
    out_dir = out_dir or build_dir(stage, project_dir)
    with tempfile.TemporaryDirectory(prefix="package-") as scratch:
        chalice_out = Path(scratch) / "chalice"
        _chalice_package_checked(stage, chalice_out, project_dir)
        template = json.loads((chalice_out / "sam.json").read_text())
        finish_template(template, stage, mode, project_dir)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        for name, runtime_root in ZIPS.items():
            precompile_zip(chalice_out / name, out_dir / name, runtime_root)
    path = out_dir / "template.json"
    path.write_text(json.dumps(template, indent=2, sort_keys=True) + "\n")
    return path


@contextlib.contextmanager
def _one_build_at_a_time(project_dir: Path) -> Iterator[None]:
    """chalice package caches the zips it builds in .chalice/deployments/ and
    writes the layer's in place: two builds at once (two terminals, two test
    workers) could read each other's half-written zip."""
    cache = project_dir / ".chalice" / "deployments"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".package.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _damaged(zip_path: Path) -> str | None:
    """The first member of a zip that does not read back, if any."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        return str(error)


def _chalice_package_checked(stage: str, out: Path, project_dir: Path) -> None:
    """chalice package, once more from scratch if a cached zip it reused is
    damaged (a build interrupted while writing it): a deploy must never
    upload a zip Lambda cannot unpack."""
    with _one_build_at_a_time(project_dir):
        for attempt in (1, 2):
            _chalice_package(stage, out, project_dir)
            damaged = {name: member for name in ZIPS if (member := _damaged(out / name))}
            if not damaged:
                return
            if attempt == 2:
                raise PackageError(
                    "chalice package wrote a damaged zip twice ("
                    + ", ".join(f"{name}: {member}" for name, member in damaged.items())
                    + "): check the disk, then run make package again"
                )
            print(f"package: {', '.join(damaged)} unreadable; rebuilding .chalice/deployments/",
                  file=sys.stderr)
            for cached in (project_dir / ".chalice" / "deployments").glob("*.zip"):
                cached.unlink()
            shutil.rmtree(out)


def _chalice_package(stage: str, out: Path, project_dir: Path) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    # chalice wants a region even though the SAM it writes names none
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
    result = subprocess.run(
        [str(chalice), "package", "--stage", stage,
         "--merge-template", str(project_dir / stack_template.TEMPLATE_PATH.name), str(out)],
        cwd=project_dir, env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise PackageError(f"chalice package failed:\n{result.stdout}{result.stderr}".rstrip())


def finish_template(template: dict[str, Any], stage: str, mode: str, project_dir: Path) -> None:
    """Set the stage's defaults, insert each state machine's definition, give
    every log group and layer its deletion policy, and add the stage's alarms
    (scripts/deploy/alarms.py)."""
    parameters = template["Parameters"]
    parameters["Stage"]["Default"] = stage
    parameters["ContactListMode"]["Default"] = mode
    for name, value in stack_template.ses_sender_parameters(stage, project_dir).items():
        parameters[name]["Default"] = value
    stack_template.apply_deletion_policies(template)
    for logical_id, path in stack_template.DEFINITIONS.items():
        machine = template["Resources"][logical_id]["Properties"]
        machine["Definition"] = stack_template.load_definition(project_dir, logical_id)
        missing = stack_template.unsubstituted(
            machine["Definition"], machine["DefinitionSubstitutions"])
        if missing:
            raise PackageError(
                f"{path} uses {', '.join(sorted(missing))}, which template.json's "
                f"{logical_id}.DefinitionSubstitutions do not define"
            )
    resources = template["Resources"]
    made = stage_alarms.alarms(stack_template.app_functions(), stack_template.DEFINITIONS,
                               resources[stage_alarms.API]["Properties"]["StageName"])
    clashes = sorted(name for name in made if resources.get(name, made[name]) != made[name])
    if clashes:
        raise PackageError(f"template.json already declares {', '.join(clashes)}, which "
                           "scripts/deploy/alarms.py generates: rename one")
    resources.update(made)
    policy = resources[stage_alarms.TOPIC_POLICY]["Properties"]["PolicyDocument"]
    [statement] = [s for s in policy["Statement"] if s["Sid"] == stage_alarms.ALARMS_STATEMENT]
    statement["Condition"] = stage_alarms.topic_policy_alarm_condition(made)


def precompile_zip(source: Path, target: Path, runtime_root: str) -> None:
    """Copy a zip, adding __pycache__/*.cpython-311.pyc for every .py in it.

    Unchecked-hash pycs: Lambda's files keep no useful mtimes, and the
    sources never change under a deployed function. Paths inside them are
    the ones Lambda unpacks to, so tracebacks name /var/task/app.py.
    """
    with tempfile.TemporaryDirectory(prefix="pyc-") as scratch:
        root = Path(scratch)
        modes: dict[str, int] = {}
        with zipfile.ZipFile(source) as archive:
            for info in archive.infolist():
                modes[info.filename] = info.external_attr
            archive.extractall(root)
        compileall.compile_dir(
            str(root), quiet=2, workers=1, stripdir=str(root), prependdir=runtime_root,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        files: list[Path] = sorted(p for p in root.rglob("*") if p.is_file())
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                name = path.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.external_attr = modes.get(name) or (0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build what make deploy submits, offline")
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    try:
        path = build(args.stage)
    except (PackageError, stack_template.TemplateError) as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    out = path.parent
    print(f"Packaged stage {args.stage} in {os.path.relpath(out)}/:")
    for item in sorted(out.iterdir()):
        print(f"  {item.name:<22} {item.stat().st_size / 1024:>8.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
