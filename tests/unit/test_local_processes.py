"""scripts/local/processes.py: the stack stops with its parent, however it was started."""
import signal
import subprocess
import sys

from tests.support import PROJECT_DIR

WATCHED = """
import os, signal, sys, time
from scripts.local.processes import stop_with_parent
read, write = os.pipe()
if os.fork():  # the parent: ends once the child watches it
    os.read(read, 1)
    os._exit(0)
stop_with_parent(interval=0.05)
os.write(write, b"w")
try:
    time.sleep(30)
    print("still running", flush=True)
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


def test_a_stack_started_with_sigint_ignored_still_stops_when_its_parent_ends():
    # a script's background job inherits SIGINT ignored (make run &, nohup)
    result = subprocess.run(
        [sys.executable, "-c", WATCHED], cwd=PROJECT_DIR, capture_output=True, text=True,
        timeout=60, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )

    assert "stopped" in result.stdout, result.stdout + result.stderr
