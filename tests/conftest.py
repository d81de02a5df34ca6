"""Fixtures shared by every tier: an isolated environment, moto, a stage.

Nothing here can reach AWS or Stripe: credentials are fake, the endpoint is
moto (in process) or the local stack, and every cached client of the app is
dropped between tests.
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib import dependencies as deps

PROJECT_DIR = Path(__file__).resolve().parent.parent
EVENTS_DIR = Path(__file__).resolve().parent / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch):
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


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while starting")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {seconds}s")


@pytest.fixture(scope="session")
def localstripe():
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


def localstripe_customers(base: str, key: str = "sk_test_local") -> list:
    """Every customer localstripe holds (it is shared by the whole session)."""
    import requests

    customers, after = [], None
    while True:
        params = {"limit": 100, **({"starting_after": after} if after else {})}
        response = requests.get(f"{base}/v1/customers", params=params, auth=(key, ""))
        response.raise_for_status()
        page = response.json()
        customers += page["data"]
        if not page.get("has_more") or not page["data"]:
            return customers
        after = page["data"][-1]["id"]


@pytest.fixture
def stage(monkeypatch):
    """A stage of the app inside moto (tests/harness.py)."""
    from tests.harness import Stage

    with Stage(monkeypatch) as stage:
        yield stage


@pytest.fixture
def client(stage):
    """chalice.test.Client on that stage."""
    from chalice.test import Client

    from tests.harness import STAGE

    with Client(stage.app, stage_name=STAGE) as client:
        yield client
