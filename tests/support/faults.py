"""Fault injection for the workflow tier.

- ``FlakyProxy``: an HTTP proxy in front of localstripe that answers the
  first requests with the given faults (a status code, "drop" to close the
  connection unanswered, "hang" to forward it only after ``hang_seconds``)
  and forwards the rest.
- ``fail_first``: a botocore hook that answers the first N calls of one AWS
  operation with an error (or any parsed response), before any HTTP is sent,
  as if botocore's own retries were already spent.
- ``unreachable``: a botocore hook that makes the first N sends of one AWS
  operation fail on the network (no answer in time, no connection), below
  botocore's own retries, which see them as they would see a real outage.
- ``SilentEndpoint``: a TCP endpoint on 127.0.0.1 that accepts every
  connection and never answers: a service that hangs, for real sockets and
  real timeouts (the time budgets, chalicelib/budget.py).
"""
import http.server
import socket
import threading
import time
from typing import Any

import requests
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError


class FlakyProxy:
    def __init__(
        self, upstream: str, faults: list[int | str], hang_seconds: float = 2.0
    ) -> None:
        self.upstream = upstream
        self.hang_seconds = hang_seconds
        self.faults = list(faults)
        self.requests_seen = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                with proxy._lock:
                    proxy.requests_seen += 1
                    fault = proxy.faults.pop(0) if proxy.faults else None
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "hang":
                    # answers later than the client waits; the request still
                    # reaches Stripe, as a slow network's would
                    time.sleep(proxy.hang_seconds)
                if isinstance(fault, int):
                    payload = b'{"error": {"type": "api_error", "message": "injected fault"}}'
                    self.send_response(fault)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream = requests.request(
                    self.command, proxy.upstream + self.path, headers=headers, data=body
                )
                try:
                    self.send_response(upstream.status_code)
                    for name in ("Content-Type", "Idempotent-Replayed"):
                        if name in upstream.headers:
                            self.send_header(name, upstream.headers[name])
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except OSError:  # the client gave up waiting ("hang")
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FlakyProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()


def aws_error(code: str, message: str = "injected fault", status: int = 400) -> dict[str, Any]:
    return {
        "status": status,
        "parsed": {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
    }


class fail_first:
    """Register on a boto3 session: after ``skip`` calls, ``times`` calls get ``answer``."""

    def __init__(
        self, session: Any, event: str, times: int, answer: dict[str, Any], skip: int = 0
    ) -> None:
        self.remaining = times
        self.skip = skip
        self.calls = 0
        self._answer = answer
        self._lock = threading.Lock()
        session.events.register(event, self)

    def __call__(self, **_: Any):
        with self._lock:
            self.calls += 1
            if self.calls <= self.skip or self.remaining <= 0:
                return None
            self.remaining -= 1
        return AWSResponse("", self._answer["status"], HTTPHeaders(), None), dict(self._answer["parsed"])


NETWORK_FAULTS = {
    "read timeout": lambda url: ReadTimeoutError(endpoint_url=url),
    "connection refused": lambda url: EndpointConnectionError(endpoint_url=url),
}


class unreachable:
    """Register on a boto3 session: the first ``times`` sends of ``operation``
    (e.g. "dynamodb.PutItem") raise ``fault`` (a key of NETWORK_FAULTS)."""

    def __init__(self, session: Any, operation: str, times: int, fault: str) -> None:
        self.remaining = times
        self.sends = 0
        self._fault = NETWORK_FAULTS[fault]
        self._lock = threading.Lock()
        session.events.register(f"before-send.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> None:
        with self._lock:
            self.sends += 1
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        raise self._fault(request.url)


class SilentEndpoint:
    """``with SilentEndpoint() as endpoint``: connections to ``endpoint.url``
    are accepted (the handshake completes) and then never answered, until the
    block ends; ``endpoint.connections`` holds each one accepted."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._server.settimeout(0.05)  # so the accept loop sees the block end
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._ended.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)  # held open, never read or answered

    def __enter__(self) -> "SilentEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ended.set()
        self._thread.join(timeout=5)
        self._server.close()
        for connection in self.connections:
            connection.close()
