"""What every package under scripts/ shares: where the project is, what a
stage's things are called, and how to wait for something.

Nothing here is shipped to Lambda (Chalice packages only app.py and
chalicelib/); nothing here imports more than the standard library.
"""
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

APP_NAME = "tenant-onboarding"
PROJECT_DIR = Path(__file__).resolve().parents[1]
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"  # moto's account

T = TypeVar("T")


class TimedOut(AssertionError):
    """``eventually`` gave up. An AssertionError, so a test that waited reads as failed."""


def stack_name(stage: str) -> str:
    """The stage's CloudFormation stack, and the prefix of every resource name in it."""
    return f"{APP_NAME}-{stage}"


def stripe_secret_name(stage: str) -> str:
    """Kept out of the template: the key must never pass through CloudFormation."""
    return f"{APP_NAME}/{stage}/stripe-api-key"


def eventually(
    probe: Callable[[], T | None],
    seconds: float,
    what: str | Callable[[], str],
    interval: float = 0.05,
) -> T:
    """What ``probe`` returns once it returns something truthy, asked every
    ``interval`` seconds; ``TimedOut`` naming ``what`` after ``seconds``.

    A probe that knows the wait is hopeless (the process it waits for has
    exited, the execution ended otherwise) raises, and that ends the wait at
    once. The one polling loop of the tests, the bench and the scripts.
    """
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise TimedOut(f"{described} (after {seconds:g}s)")
        time.sleep(interval)
