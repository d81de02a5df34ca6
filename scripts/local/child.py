"""A local stack in a child process: the one launcher of the tests, the bench and ``make load``.

``python -m scripts.local.stack`` as ``make run`` starts it, on free ports,
with its own state directory and the default settings but the ones given
(never the shell's: a developer's CONTACT_LIST_MODE must not leak into a
test). Ready once the stack has written ``stack.json``, which it does
atomically (a temporary file, then ``os.replace``): a reader never sees it
half-written. Stopped with SIGINT, as Ctrl-C stops ``make run``.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from scripts.shared import PROJECT_DIR, eventually

# What shapes a stack besides its ports (docs/local-stack.md, "Local settings").
SETTINGS = (
    "STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_TIMEOUT_SECONDS", "APPROVAL_TIMEOUT_SECONDS",
    "APPROVAL_REMINDER_SECONDS", "CONTACT_LIST_MODE", "LOCAL_ENFORCE_SES_QUOTAS",
    "LOCAL_STATE_DIR", "LOCAL_RECONCILE_SECONDS", "RECONCILE_GRACE_SECONDS",
    "LOCAL_RETRY_INTERVAL_SECONDS",
)


class ChildStackError(RuntimeError):
    """The stack did not start; the message holds what it printed."""


def child_stack_environment(**settings: str) -> dict[str, str]:
    """The environment of a stack started as a child process: free ports and
    the default settings but ``settings``, whatever the caller's shell set for
    a stack of its own."""
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    environment.update(LOCAL_AWS_PORT="0", LOCAL_API_PORT="0", LOCAL_STRIPE_PORT="0")
    environment.update(settings)
    return environment


def read_stack_json(state_dir: Path) -> dict[str, Any] | None:
    """What a ready stack wrote, or None before it is ready."""
    try:
        outputs: dict[str, Any] = json.loads((state_dir / "stack.json").read_text())
        return outputs
    except FileNotFoundError:
        return None


class ChildStack:
    """``with ChildStack(state_dir, STRIPE_API_KEY=...) as stack: stack.outputs``."""

    def __init__(self, state_dir: Path, ready_seconds: float = 90, **settings: str) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self._settings = settings
        self._ready_seconds = ready_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self.outputs: dict[str, Any] = {}
        self._log: IO[str] | None = None

    def start(self) -> dict[str, Any]:
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.local.stack", "--state-dir", str(self.state_dir)],
            cwd=PROJECT_DIR, env=child_stack_environment(**self._settings),
            stdout=self._log, stderr=subprocess.STDOUT,
        )

        def ready() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ChildStackError(f"the local stack exited early:\n{self.output()}")
            return read_stack_json(self.state_dir)

        try:
            self.outputs = eventually(ready, self._ready_seconds,
                                      lambda: f"the local stack was not ready:\n{self.output()}",
                                      interval=0.1)
        except BaseException:
            self.stop()
            raise
        return self.outputs

    def output(self) -> str:
        """Everything the stack printed so far."""
        if self._log is None or self._log.closed:
            return self.log_path.read_text() if self.log_path.exists() else ""
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, seconds: float = 20) -> int | None:
        """Ctrl-C, then kill if it will not stop; its exit status."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None and not self._log.closed:
            self._log.close()
        return self.process.returncode if self.process is not None else None

    def __enter__(self) -> "ChildStack":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
