"""The admin CLI prints what tenants typed as text, never as terminal control;
says "sign in again" for a sign-in the API refuses; and its usage line is
the command a person types."""
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from scripts.admin.cli import LIST_COLUMNS, AdminApi, AdminError, describe, main, table, visible


@pytest.mark.parametrize("raw, shown", [
    ("Acme\x1b[2K\r\x1b[32mTotally Legit Bank\x1b[0m",
     "Acme\\x1b[2K\\r\\x1b[32mTotally Legit Bank\\x1b[0m"),
    ("two\nlines", "two\\nlines"), ("tab\there", "tab\\there"),
    ("evil \u202eknaB", "evil \\u202eknaB"), ("c1 \x9b31m", "c1 \\x9b31m"),
    ("Zoë & Søn — Ltd", "Zoë & Søn — Ltd"), ("株式会社サンプル", "株式会社サンプル"),
])
def test_given_a_stored_string_when_printed_then_control_characters_are_visible(raw, shown):
    assert visible(raw) == shown


def test_given_a_name_with_a_newline_when_listed_then_the_table_keeps_one_line_a_tenant():
    rows = [{"tenantId": "t1", "name": "Acme\nLtd", "email": "a@example.com", "status": "onboarding"},
            {"tenantId": "t2", "name": "Bob", "email": "b@example.com", "status": "onboarding"}]

    lines = table(rows, LIST_COLUMNS).splitlines()

    assert len(lines) == 4
    assert "Acme\\nLtd" in lines[2]


def test_given_a_tenant_when_described_then_every_value_is_visible_text():
    shown = describe({"tenantId": "t1", "name": "\x1b[2J", "status": "failed",
                      "failureReason": "Error: \x07bell", "attempts": 2,
                      "retries": [{"attempt": 2, "retriedBy": "ops", "retriedAt": "now",
                                   "previousStatus": "failed", "previousReason": "boom"}]})

    assert "\x1b" not in shown and "\x07" not in shown
    assert "\\x1b[2J" in shown and "retry 2" in shown and "was failed: boom" in shown


# --- a sign-in the API no longer takes ------------------------------------------
@pytest.fixture
def refusing_api():
    """An API that answers 401 as API Gateway's authorizer does, whatever the token."""
    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"message":"Unauthorized"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_given_a_token_the_api_refuses_then_sign_in_again_not_401_unauthorized(refusing_api):
    api = AdminApi(refusing_api, lambda: "a token from an earlier local stack")

    with pytest.raises(AdminError) as refused:
        api.show("t1")

    said = str(refused.value)
    assert "sign in again" in said and 'make admin ARGS="login"' in said
    assert "401" not in said and "Unauthorized" not in said


# --- the usage line is the command a person types --------------------------------
@pytest.mark.parametrize("argv, exit_code, first_line", [
    (["--help"], 0, 'usage: make admin ARGS="[-h] [--stage STAGE]'),
    (["reject", "t1"], 2, 'usage: make admin ARGS="reject [-h] --reason REASON tenant_id"'),
])
def test_given_python_runs_the_cli_then_its_usage_says_make_admin_args(
    monkeypatch, capsys, argv, exit_code, first_line
):
    monkeypatch.setattr(sys, "argv", ["/repo/scripts/admin/__main__.py", *argv])

    with pytest.raises(SystemExit) as ended:
        main(argv)

    said = capsys.readouterr()
    usage = (said.out or said.err).splitlines()
    assert ended.value.code == exit_code
    assert usage[0].startswith(first_line)
    assert "__main__" not in said.out + said.err
