"""Fixtures every tier shares: an isolated environment and localstripe.

Nothing here can reach AWS or Stripe: credentials are fake, the endpoint is
moto (in process) or the local stack, and every cached client of the app is
dropped between tests.
"""
import os
import subprocess
import sys
from collections.abc import Iterator

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A file's tests run on one worker, in order (--dist=loadgroup): a module's
    tests share a stage or a local stack. A test that names a group of its own
    (xdist_group("timing")) runs with that group instead."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
