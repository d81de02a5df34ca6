"""What the tiers share: paths, sample events, ports, polling, localstripe.

The stage in moto (stage.py), fault injection (faults.py), local stacks in
a subprocess (stacks.py) and the browser (browser.py) have modules of their own.
"""
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from scripts.shared import PROJECT_DIR, eventually

__all__ = ["PROJECT_DIR", "EVENTS_DIR", "eventually", "free_port", "load_event",
           "localstripe_customers", "wait_for_port"]

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """A sample event of tests/events/, as a new object each time."""
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return loaded


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: "subprocess.Popen[Any]", seconds: float = 20) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while starting")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    eventually(listening, seconds, f"nothing listened on port {port}")


def localstripe_customers(base: str, key: str = "sk_test_local") -> list[dict[str, Any]]:
    """Every customer localstripe holds (it is shared by the whole session)."""
    import requests

    customers: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
        response = requests.get(f"{base}/v1/customers", params=params, auth=(key, ""), timeout=10)
        response.raise_for_status()
        page = response.json()
        customers += page["data"]
        if not page.get("has_more") or not page["data"]:
            return customers
        after = page["data"][-1]["id"]


def unsigned_id_token(sub: str, email: str = "tenant@example.com") -> str:
    """A Cognito-shaped ID token for chalice.test, which reads a token's claims
    without checking its signature (the end-to-end tier checks real ones)."""
    import base64

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": sub, "email": email, "cognito:username": sub, "token_use": "id"}
    return f"{part({'alg': 'none'})}.{part(claims)}.signature"
