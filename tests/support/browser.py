"""Debian's Chromium, headless, driven through chromedriver's W3C WebDriver
API with nothing but the standard library (no Selenium, no browser download).

Tests find things as a person (or a screen reader) does: a field by its
label, a button by its name, using the accessible name Chromium computes
(WebDriver's "Get Computed Label"), so a field that is not properly labelled
cannot be found. Waits are short and bounded (``BROWSER_TIMEOUT_SECONDS``,
default 30): the local stack answers in well under a second.
"""
import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.shared import eventually
from tests.support import free_port, wait_for_port

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BINARY", "/usr/bin/chromedriver")
TIMEOUT = float(os.environ.get("BROWSER_TIMEOUT_SECONDS", "30"))
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element reference key
DESKTOP = (1280, 900)
PHONE = (375, 812)

# What this machine's headless Chromium needs: no sandbox (root), no GPU,
# and none of the background connections the network here refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--password-store=basic",
    "--lang=en-US",
    f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
]

# Records alert/confirm/prompt instead of opening them: a page that calls one
# has run script it should not have (the markup test asserts there were none).
DIALOG_RECORDER = """
window.__dialogs = [];
for (const kind of ['alert', 'confirm', 'prompt', 'print']) {
  window[kind] = function (message) { window.__dialogs.push(kind + ': ' + String(message)); };
}
"""


def missing_tools() -> list[str]:
    return [tool for tool in (CHROMIUM, CHROMEDRIVER) if not shutil.which(tool)]


class WebDriverError(AssertionError):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


class Element:
    def __init__(self, browser: "Browser", reference: str) -> None:
        self.browser = browser
        self.id = reference

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        return self.browser.command(method, f"/element/{self.id}{path}", body)

    @property
    def label(self) -> str:
        return self._call("GET", "/computedlabel")

    @property
    def text(self) -> str:
        return self._call("GET", "/text")

    @property
    def displayed(self) -> bool:
        return bool(self._call("GET", "/displayed"))

    def click(self) -> None:
        self._call("POST", "/click", {})

    def clear(self) -> None:
        self._call("POST", "/clear", {})

    def type(self, text: str) -> None:
        self._call("POST", "/value", {"text": text})

    def fill(self, text: str) -> None:
        self.clear()
        self.type(text)


class Browser:
    """One chromedriver and one Chromium with a fresh profile."""

    def __init__(self, profile_dir: Path, log_path: Path) -> None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self._log = open(log_path, "w")
        self._driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1", "--log-level=WARNING"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.session = ""
        try:
            wait_for_port(port, self._driver)
            self._base = f"http://127.0.0.1:{port}"
            capabilities = {
                "browserName": "chrome",
                "unhandledPromptBehavior": "ignore",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"],
                },
            }
            started = self._request("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
            self.session = started["sessionId"]
            self.command("POST", "/timeouts",
                         {"implicit": 0, "pageLoad": TIMEOUT * 1000, "script": TIMEOUT * 1000})
            self._record_dialogs()
        except BaseException:
            self.quit()
            raise

    # --- the protocol ---------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            self._base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT + 30) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            value = json.loads(error.read() or b"{}").get("value", {})
            raise WebDriverError(value.get("error", str(error.code)), value.get("message", "")) from None

    def command(self, method: str, path: str, body: dict | None = None) -> Any:
        return self._request(method, f"/session/{self.session}{path}", body)

    def cdp(self, command: str, params: dict | None = None) -> Any:
        """A Chrome DevTools Protocol command on the current window."""
        return self.command("POST", "/goog/cdp/execute", {"cmd": command, "params": params or {}})

    def quit(self) -> None:
        try:
            if self.session:
                self._request("DELETE", f"/session/{self.session}")
        except Exception:
            pass
        finally:
            self.session = ""
            self._driver.terminate()
            try:
                self._driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._driver.kill()
                self._driver.wait()
            self._log.close()

    # --- windows ----------------------------------------------------------------------
    def _record_dialogs(self) -> None:
        self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": DIALOG_RECORDER})

    @property
    def window(self) -> str:
        return self.command("GET", "/window")

    def new_window(self) -> str:
        """Open a second window (not a tab: it stays visible) and switch to it."""
        handle = self.command("POST", "/window/new", {"type": "window"})["handle"]
        self.switch_to(handle)
        self._record_dialogs()
        return handle

    def switch_to(self, handle: str) -> None:
        self.command("POST", "/window", {"handle": handle})

    def viewport(self, width: int, height: int) -> None:
        """Lay the page out as a screen this size would (375 px: a phone)."""
        self.cdp("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
        })

    # --- pages ---------------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        wrapped = [{ELEMENT: a.id} if isinstance(a, Element) else a for a in args]
        return self.command("POST", "/execute/sync", {"script": script, "args": wrapped})

    def dialogs(self) -> list[str]:
        return self.run("return window.__dialogs || []")

    def open_alert(self) -> str | None:
        try:
            return self.command("GET", "/alert/text")
        except WebDriverError as error:
            if error.error == "no such alert":
                return None
            raise

    @property
    def body_text(self) -> str:
        return self.run("return document.body.innerText")

    def screenshot(self, path: Path) -> Path:
        """The whole page (beyond the viewport) as a PNG."""
        size = self.run("return [document.documentElement.scrollWidth, "
                        "document.documentElement.scrollHeight]")
        shot = self.cdp("Page.captureScreenshot", {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
        })
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def press(self, *keys: str) -> None:
        """Keys pressed on the keyboard, to whatever has the focus."""
        actions = []
        for key in keys:
            actions += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.command("POST", "/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})
        self.command("DELETE", "/actions")

    @property
    def focused(self) -> Element:
        return Element(self, self.command("GET", "/element/active")[ELEMENT])

    # --- finding things as a person does ----------------------------------------------------
    def find_all(self, css: str) -> list[Element]:
        found = self.command("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, item[ELEMENT]) for item in found]

    def _named(self, css: str, name: str) -> list[Element]:
        matches = []
        for element in self.find_all(css):
            try:
                if element.displayed and element.label == name:
                    matches.append(element)
            except WebDriverError as error:
                if error.error != "stale element reference":
                    raise
        return matches

    def field(self, label: str, timeout: float | None = None) -> Element:
        """The one visible form field whose accessible name is ``label``."""
        return self._one("input, textarea, select", label, "field", timeout)

    def button(self, name: str, timeout: float | None = None) -> Element:
        """The one visible button whose accessible name is ``name``."""
        return self._one("button, [role=button], input[type=submit]", name, "button", timeout)

    def _one(self, css: str, name: str, kind: str, timeout: float | None) -> Element:
        found: list[Element] = []

        def one() -> bool:
            nonlocal found
            found = self._named(css, name)
            return len(found) == 1

        self.wait_until(one, f"one visible {kind} named {name!r} (found {len(found)})", timeout)
        return found[0]

    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        """What ``condition`` returns once truthy; a page re-rendering under it
        (a stale or missing element) is asked again, not an error."""
        seconds = TIMEOUT if timeout is None else timeout
        last_error: list[Exception | None] = [None]

        def met() -> Any:
            try:
                return condition()
            except WebDriverError as error:
                if error.error not in ("stale element reference", "no such element"):
                    raise
                last_error[0] = error
                return None

        def described() -> str:
            try:
                page = self.body_text
            except WebDriverError:
                page = "(unreadable)"
            return f"{what} (last error: {last_error[0]}); the page shows:\n{page}"

        return eventually(met, seconds, described, interval=0.1)

    def wait_for_text(self, text: str, timeout: float | None = None) -> None:
        self.wait_until(lambda: text.lower() in self.body_text.lower(), f"text {text!r}", timeout)

    def error_next_to(self, field: Element) -> str:
        """What the page says about ``field`` once it is marked invalid (an empty
        string before): its accessible description (the visible elements its
        aria-describedby names) found just below it."""
        return self.run(
            """
            const input = arguments[0];
            if (input.getAttribute('aria-invalid') !== 'true') return '';
            const ids = (input.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
            const box = input.getBoundingClientRect();
            return ids.map((id) => document.getElementById(id))
              .filter((e) => e && e.getClientRects().length)
              // next to it: within a few lines below the field
              .filter((e) => e.getBoundingClientRect().top - box.bottom < 80)
              .map((e) => e.innerText.trim()).join(' ');
            """,
            field,
        )

    def horizontal_overflow(self) -> int:
        """How many CSS pixels the page is wider than the viewport (0: no sideways scroll)."""
        return self.run("return document.documentElement.scrollWidth - window.innerWidth")
