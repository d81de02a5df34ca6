"""The functional tier: the app's stage inside moto, in process (support/stage.py).

A module's tests share one provisioned stage, reset after each test; it
goes when the module ends, so the unit tier's own mocks never meet it.
"""
import json
from collections.abc import Iterator
from typing import Any

import pytest

from scripts.shared import PROJECT_DIR
from tests.support.stage import STAGE, Stage, StageWorld

TIMEOUTS = {name: spec["lambda_timeout"] for name, spec in json.loads(
    (PROJECT_DIR / ".chalice" / "config.json").read_text())["lambda_functions"].items()}


@pytest.fixture(scope="module", autouse=True)
def stage_world() -> Iterator[None]:
    yield
    StageWorld.close()


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stage]:
    """The stage with its default settings (no Stripe, list-per-tenant)."""
    with Stage(monkeypatch) as stage:
        yield stage


@pytest.fixture
def client(stage: Stage) -> Iterator[Any]:
    """chalice.test.Client on that stage."""
    from chalice.test import Client

    with Client(stage.app, stage_name=STAGE) as client:
        yield client


@pytest.fixture(autouse=True)
def lambda_contexts_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """chalice.test's Client invokes every Lambda function with a context of
    3 s (chalice.local.LambdaContext's default), whatever config.json says;
    Lambda gives each its lambda_timeout, and the time budget
    (chalicelib/budget.py) goes by it. (Its routes already get the API's.)"""
    import chalice.test
    from chalice.local import LambdaContext

    def configured(function_name: str, memory_size: int, max_runtime_ms: int | None = None,
                   time_source: Any = None) -> LambdaContext:
        if max_runtime_ms is None:
            max_runtime_ms = TIMEOUTS.get(function_name, 3) * 1000
        return LambdaContext(function_name, memory_size, max_runtime_ms=max_runtime_ms,
                             time_source=time_source)

    monkeypatch.setattr(chalice.test, "LambdaContext", configured)
