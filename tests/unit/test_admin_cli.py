"""The admin CLI prints what tenants typed as text, never as terminal control."""
import pytest

from scripts.admin.cli import LIST_COLUMNS, describe, table, visible


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
