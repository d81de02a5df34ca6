"""localstripe, bound to 127.0.0.1 only, in memory, honouring Idempotency-Key.

localstripe's own entry point listens on every interface, pickles its whole
store to /tmp after each write (shared by every instance on the machine, and
slower with each customer) and ignores the Idempotency-Key header. Real
Stripe replays the first response to a POST with the same key (for 24 hours)
and answers 409 while the first is still in flight; this server does the
same, so the local stack and tests see Stripe's at-most-once behaviour.

It ends with the process that started it (PARENT_PID, the local stack), even
when that one is killed with SIGKILL, so no orphan keeps holding the port.

Usage: python -m scripts.local.stripe_server PORT [PARENT_PID]
"""
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def idempotency_middleware() -> Any:
    from aiohttp import web

    replies: dict[tuple[str, str, str], tuple[int, bytes, str]] = {}
    in_flight: set = set()

    @web.middleware
    async def idempotent(request: Any, handler: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        slot = (request.headers.get("Authorization", ""), request.path, key)
        if slot in replies:
            status, body, content_type = replies[slot]
            return web.Response(
                status=status,
                body=body,
                content_type=content_type,
                headers={"Idempotent-Replayed": "true"},
            )
        if slot in in_flight:
            return web.json_response(
                {"error": {"type": "idempotency_error",
                           "message": "A request with this Idempotency-Key is in progress."}},
                status=409,
            )
        in_flight.add(slot)
        try:
            response = await handler(request)
            if response.status < 500 and getattr(response, "body", None) is not None:
                replies[slot] = (response.status, response.body, response.content_type)
            return response
        finally:
            in_flight.discard(slot)

    return idempotent


def exit_with_parent(parent_pid: int) -> None:
    """Be killed when ``parent_pid`` dies, however it dies.

    On Linux the kernel does it (PR_SET_PDEATHSIG); elsewhere a thread
    watches for this process being handed to another parent.
    """
    linux = sys.platform.startswith("linux")
    if not linux or ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL)) != 0:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # it died before the line above
        os._exit(0)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 8420
    if len(args) > 1:
        exit_with_parent(int(args[1]))

    from aiohttp import web
    from localstripe import resources
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None
    app.middlewares.append(idempotency_middleware())
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
