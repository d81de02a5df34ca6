"""The local stack's place among the machine's processes.

- ``stop_with_parent``: the stack stops when the process that started it
  (``make run``, a shell, a test run) ends, even by ``kill -9``, as if Ctrl-C
  had been pressed: nothing of it keeps holding the ports. (Its one child,
  localstripe, dies with it: scripts/local/stripe_server.py.)
- ``port_owner``: who listens on a port, from /proc, so that "port in use"
  names the process to stop.
"""
import os
import signal
import threading
import time
from pathlib import Path

LISTEN = "0A"  # the socket state in /proc/net/tcp*


def stop_with_parent(interval: float = 0.5) -> None:
    """SIGINT to this process once its parent has ended (it is handed to
    another: init or a subreaper), whatever ended it."""
    parent = os.getppid()
    if parent <= 1:  # started by init: no parent to outlive
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started in the background by a script, which ignores SIGINT for its
        # children: the SIGINT below would do nothing (called from the main thread)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        print(f"make run: the process that started it (pid {parent}) ended; stopping.",
              flush=True)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="local-parent-watch", daemon=True).start()


def describe(pid: int) -> str:
    """``pid 1234 (python -m scripts.local)``: the command line from /proc, when readable."""
    try:
        # one line, whatever the arguments hold (a newline would split the message)
        command = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(
            errors="replace").replace("\0", " ").split())
    except OSError:
        command = ""
    if len(command) > 120:
        command = command[:117] + "..."
    return f"pid {pid} ({command})" if command else f"pid {pid}"


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on ``port``, any address, IPv4 or IPv6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_owner(port: int) -> int | None:
    """The pid of a process listening on ``port`` (None when /proc does not say:
    not Linux, or a process of another user)."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for process in Path("/proc").glob("[0-9]*"):
        try:
            descriptors = list((process / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in inodes:
                    return int(process.name)
            except OSError:
                continue
    return None
