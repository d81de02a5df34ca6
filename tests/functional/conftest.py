"""The functional tier: the app's stage inside moto, in process (support/stage.py).

A module's tests share one provisioned stage, reset after each test; it
goes when the module ends, so the unit tier's own mocks never meet it.
"""
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stage import STAGE, Stage, StageWorld


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
