"""Fixtures every tier shares: an isolated environment and localstripe.

Nothing here can reach AWS or Stripe: credentials are fake, the endpoint is
moto (in process) or the local stack, and every cached client of the app is
dropped between tests.
"""
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import dependencies as deps
from tests.support import PROJECT_DIR, free_port, wait_for_port

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for variable in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "STRIPE_API_KEY",
        "STRIPE_SECRET_ID",
        "STRIPE_API_BASE",
        "TENANT_TABLE_NAME",
        "EVENT_BUS_NAME",
        "STATE_MACHINE_ARN",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    deps.reset()
    yield
    deps.reset()


@pytest.fixture(scope="session", autouse=True)
def one_model_loader_for_every_session() -> Iterator[None]:
    """Every test starts the app's clients afresh (deps.reset): each a new
    boto3 session, which would read and parse each service's JSON model again
    (~50 ms a client). botocore's loader only caches what it read, so one
    per data path serves every session of the run. The app is unchanged: in
    Lambda a container builds one session."""
    import botocore.loaders
    import botocore.session

    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loaders[search_path_string] = botocore.loaders.create_loader(search_path_string)
        return loaders[search_path_string]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared_loader)
        yield


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """A localstripe server of our own (127.0.0.1, in-memory), for the session."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.local.stripe_server", str(port)],
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


# Timing-sensitive modules: they run one after another on one worker, never
# beside each other (the decision race, the load run).
TIMING_GROUP = frozenset({
    "tests/functional/workflow/test_decision_race.py",
    "tests/e2e/test_load.py",
})


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file (a module's tests share a
    stage or a local stack, so a file runs on one worker, in order), or the
    timing group."""
    path = nodeid.split("::", 1)[0]
    return "timing" if path in TIMING_GROUP else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Two workers a core (--numprocesses=auto): the tests mostly wait (for an
    execution's next state, a retry interval, a child stack), so two a core
    keep the cores busy. Measured on 2 cores (1,000 tests): 2 workers 268-295 s,
    3 233 s, 4 226 s, 6 260 s with a timing failure."""
    return min(2 * (os.cpu_count() or 1), 8)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's own groups (--dist=loadgroup) do nothing on pytest 9: they
    rename each test's nodeid through an attribute pytest 9 no longer reads,
    so every test was scheduled alone and a module's fixtures (its stage,
    its local stack, its browser) ran on both workers. This scheduler groups
    by ``work_unit``, in collection order: the end-to-end files, the slowest,
    start first, and the unit tests fill the end."""
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """tests/test_iam.py's coverage, when it ran: how many distinct AWS calls it
    checked against each function's own role (``-v``: which). The test hands it
    over as a user property of its report, which xdist sends from the worker
    that ran it to this process with the report itself."""
    from tests.support.iam import COVERAGE_PROPERTY, coverage_lines

    for report in [r for reports in terminalreporter.stats.values() for r in reports]:
        if getattr(report, "when", None) != "call":
            continue
        for name, coverage in report.user_properties:
            if name == COVERAGE_PROPERTY:
                terminalreporter.write_sep("=", "IAM coverage: distinct AWS calls checked "
                                                "against each function's own role")
                for line in coverage_lines(coverage, calls=config.option.verbose > 0):
                    terminalreporter.write_line(line)
