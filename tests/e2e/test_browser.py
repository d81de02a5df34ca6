"""Browser tier: Debian's Chromium, headless, through the sign-up page and the
admin console of the local stack started as `make run` starts it.

A person's journey, found the way a person finds things (fields by their
label, buttons by their name): a tenant signs up on /signup, confirms with
the code the local Cognito "mailed" to the outbox and sees "awaiting
approval"; an admin made with `make admin ARGS="add-admin …"` signs in on
/admin with the temporary password from the outbox, sets a new one, finds
the tenant and approves it; the tenant's page, never reloaded, turns
"active". Also: a saved sign-in the API refuses says "sign in again";
Cognito's refusals as sentences next to their field, a
tenant named like markup shown as text, and both pages by keyboard alone at
375 px wide.

Screenshots go to BROWSER_SCREENSHOT_DIR when it is set (docs/ for the
docs/tests.md: `BROWSER_SCREENSHOT_DIR=docs make test PYTEST_ARGS=tests/e2e/test_browser.py`),
else to the test's temporary directory. Waits are bounded by
BROWSER_TIMEOUT_SECONDS (default 30).
"""
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.admin.session import admin_password_policy
from scripts.local.client import last_mail
from scripts.shared import eventually
from tests.support import PROJECT_DIR
from tests.support.browser import DESKTOP, PHONE, TIMEOUT, Browser, WebDriverError, missing_tools
from tests.support.stacks import RunningStack

pytestmark = pytest.mark.e2e

TENANT_PASSWORD = "Correct-Horse-9"
ADMIN_PASSWORD = "Admin-Console-42"
MARKUP_NAME = "<img src=x onerror=alert(1)>"


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built_pages():
    """The pages as `make run` serves them (make assets: a no-op when up to date)."""
    missing = missing_tools()
    if missing:
        message = (f"{', '.join(missing)} not found: apt-get install chromium chromium-driver "
                   "(.ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    build = subprocess.run(["make", "--no-print-directory", "-s", "assets"], cwd=PROJECT_DIR,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr


@pytest.fixture(scope="module")
def stack(built_pages, tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("browser-stack") / "state",
                           LOCAL_ENFORCE_SES_QUOTAS="1")  # SES as a real account has it
    yield running
    running.stop()


@pytest.fixture
def browser(built_pages, tmp_path):
    chromium = Browser(tmp_path / "profile", tmp_path / "chromedriver.log")
    yield chromium
    chromium.quit()


@pytest.fixture
def screenshot(browser, tmp_path) -> Callable[[str], Path]:
    """Save the current page as NAME.png (BROWSER_SCREENSHOT_DIR, or the test's tmp dir)."""
    directory = Path(os.environ.get("BROWSER_SCREENSHOT_DIR") or tmp_path / "screenshots")
    if not directory.is_absolute():
        directory = PROJECT_DIR / directory

    def take(name: str) -> Path:
        return browser.screenshot(directory / name)

    return take


# --- what a tenant and an admin do -------------------------------------------------------------
def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


def mail(stack: RunningStack, to: str, field: str) -> str:
    """The latest ``field`` (code, temporaryPassword) the local Cognito mailed ``to``."""
    return last_mail(stack.state_dir, to, field, seconds=TIMEOUT)


def add_admin(stack: RunningStack, email: str) -> str:
    """`make admin ARGS="add-admin EMAIL"` against this stack: the temporary password."""
    result = subprocess.run(
        [sys.executable, "-m", "scripts.admin", "--state-dir", str(stack.state_dir), "add-admin", email],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return mail(stack, email, "temporaryPassword")


def sign_up(browser: Browser, stack: RunningStack, company: str, email: str,
            password: str = TENANT_PASSWORD) -> None:
    browser.open(stack.outputs["apiUrl"] + "/signup")
    browser.field("Company name").fill(company)
    browser.field("Email").fill(email)
    browser.field("Password").fill(password)
    browser.button("Sign up").click()


def confirm(browser: Browser, code: str) -> None:
    browser.field("Confirmation code").fill(code)
    browser.button("Confirm").click()


def tenant_status(browser: Browser) -> str:
    return browser.run("const b = document.getElementById('status-badge');"
                       "return b && b.offsetParent ? b.textContent : ''")


def wait_for_status(browser: Browser, status: str) -> None:
    browser.wait_until(lambda: tenant_status(browser) == status, f"tenant status {status!r}")


def admin_signs_in_for_the_first_time(browser: Browser, stack: RunningStack, email: str,
                                      path: str = "/admin") -> None:
    temporary = add_admin(stack, email)
    browser.open(stack.outputs["apiUrl"] + path)
    browser.field("Email").fill(email)
    browser.field("Password").fill(temporary)
    browser.button("Sign in").click()
    browser.field("New password").fill(ADMIN_PASSWORD)
    browser.button("Set password and sign in").click()
    browser.wait_for_text(f"Signed in as {email}")


def no_script_ran(browser: Browser) -> None:
    assert browser.open_alert() is None
    assert browser.dialogs() == []
    assert browser.run("return document.querySelectorAll('img').length") == 0


# --- the journey -------------------------------------------------------------------------------
def test_a_tenant_signs_up_confirms_and_turns_active_when_an_admin_approves(stack, browser, screenshot):
    company, email = f"Ada Ltd {uuid.uuid4().hex[:6]}", unique("ada")

    # given the sign-up page
    browser.open(stack.outputs["apiUrl"] + "/signup")
    browser.field("Company name")
    screenshot("signup.png")
    browser.viewport(*PHONE)
    assert browser.horizontal_overflow() == 0
    screenshot("signup-375.png")
    browser.viewport(*DESKTOP)

    # when the tenant signs up and confirms with the code from its email
    sign_up(browser, stack, company, email)
    confirm(browser, mail(stack, email, "code"))

    # then it is signed in, and waiting for approval with a deadline
    wait_for_status(browser, "Awaiting approval")
    assert browser.find_all("h1")[-1].text == company
    assert "An administrator will decide by" in browser.body_text
    screenshot("tenant-awaiting-approval.png")
    tenant_window = browser.window
    browser.run("window.__sameDocument = true")  # gone if the page reloads

    # when an admin, new, signs in on the console and sets a password
    browser.new_window()
    admin_email = unique("ops")
    admin_signs_in_for_the_first_time(browser, stack, admin_email)

    # then the tenant is awaiting approval, with time left
    tenant = browser.button(company)
    row = browser.run("return arguments[0].closest('li').innerText", tenant)
    assert email in row and "left" in row
    screenshot("admin-console.png")

    # when the admin opens it and approves it
    tenant.click()
    approve = browser.button("Approve")
    assert "Awaiting approval" in browser.body_text and "No decision yet." in browser.body_text
    screenshot("admin-tenant-detail.png")
    approve.click()
    browser.wait_for_text(f"Approved {company}.")
    browser.wait_until(lambda: "Approved by " + admin_email in browser.body_text,
                       "the decision in the tenant's history")

    # then the tenant's page, never reloaded, says it is active
    browser.switch_to(tenant_window)
    wait_for_status(browser, "Active")
    assert browser.run("return window.__sameDocument") is True
    assert "Your account is approved and ready to use." in browser.body_text

    # and, active, it keeps its subscribers: a refusal is a sentence next to the field
    browser.wait_for_text("0 subscribers")
    browser.field("Subscriber email").fill("not-an-email")
    browser.button("Add subscriber").click()
    field = browser.field("Subscriber email")
    said = browser.wait_until(lambda: browser.error_next_to(field), "an error next to the email")
    assert said == "Email must contain exactly one @."
    # one added is listed (its name as text, not markup), and counted
    field.fill("Grace@Example.com")
    browser.field("Subscriber name (optional)").fill(MARKUP_NAME)
    browser.button("Add subscriber").click()
    browser.wait_for_text("Added Grace@Example.com.")
    browser.wait_for_text("1 subscriber")
    assert MARKUP_NAME in browser.body_text
    no_script_ran(browser)
    screenshot("tenant-subscribers.png")
    # and removed
    browser.button("Remove").click()
    browser.wait_for_text("Removed Grace@Example.com.")
    browser.wait_for_text("0 subscribers")


def test_a_tenant_named_like_markup_is_shown_as_text_and_runs_nothing(stack, browser):
    email = unique("markup")
    sign_up(browser, stack, MARKUP_NAME, email)
    confirm(browser, mail(stack, email, "code"))
    wait_for_status(browser, "Awaiting approval")
    assert browser.find_all("h1")[-1].text == MARKUP_NAME
    no_script_ran(browser)

    browser.new_window()
    admin_signs_in_for_the_first_time(browser, stack, unique("ops"))
    browser.button(MARKUP_NAME).click()
    browser.button("Approve")
    assert browser.run("return document.getElementById('detail-heading').textContent") == MARKUP_NAME
    assert MARKUP_NAME in browser.body_text
    no_script_ran(browser)


def test_a_wrong_confirmation_code_is_a_sentence_next_to_the_code_field(stack, browser):
    email = unique("typo")
    sign_up(browser, stack, "Typo Traders", email)
    code = mail(stack, email, "code")
    wrong = "000000" if code != "000000" else "111111"  # never the code sent

    confirm(browser, wrong)

    field = browser.field("Confirmation code")
    said = browser.wait_until(lambda: browser.error_next_to(field), "an error next to the code")
    assert said == "That code is not the one we sent. Check the email and type it again."
    # a new code, asked for on the page, works
    browser.button("Send a new code").click()
    browser.wait_for_text(f"We sent a new code to {email}.")
    new_code = mail(stack, email, "code")
    confirm(browser, new_code)
    browser.wait_until(lambda: tenant_status(browser) in ("Setting up", "Awaiting approval"),
                       "the tenant's status")


def test_refusals_are_sentences_next_to_the_field_they_concern(stack, browser):
    email = unique("refused")

    # a company name the pre sign-up trigger refuses (over 128 characters)
    sign_up(browser, stack, "Long " * 26, email)
    company = browser.field("Company name")
    said = browser.wait_until(lambda: browser.error_next_to(company), "an error next to Company name")
    assert said.startswith("Company name must") and said.endswith(".") and ".." not in said
    assert browser.error_next_to(browser.field("Email")) == ""

    # a password Cognito's policy refuses
    company.fill("Refused Then Fine")
    browser.field("Password").fill("short")
    browser.button("Sign up").click()
    password = browser.field("Password")
    said = browser.wait_until(lambda: browser.error_next_to(password), "an error next to Password")
    assert "at least 10 characters" in said
    assert browser.error_next_to(browser.field("Company name")) == ""

    # an email that already has an account
    browser.field("Password").fill(TENANT_PASSWORD)
    browser.button("Sign up").click()
    browser.field("Confirmation code")
    sign_up(browser, stack, "Someone Else", email)
    field = browser.field("Email")
    said = browser.wait_until(lambda: browser.error_next_to(field), "an error next to Email")
    assert said == "An account with this email already exists: sign in instead."


def test_a_rejected_tenant_signing_in_is_told_it_was_not_approved_and_to_look_for_the_mail(
        stack, browser):
    email = unique("rejected")
    tenant_id = stack.sign_up_and_confirm(email, f"Refused Ltd {uuid.uuid4().hex[:6]}")
    assert stack.finalize({"taskToken": stack.task_token(tenant_id), "status": "rejected",
                           "reason": "not a business we serve"})[0] == 200
    stack.record(tenant_id, "rejected")  # its login is disabled by then

    browser.open(stack.outputs["apiUrl"] + "/signup")
    browser.button("Sign in to your account").click()
    browser.field("Email").fill(email)
    browser.field("Password").fill(TENANT_PASSWORD)  # as sign_up_and_confirm signs up
    browser.button("Sign in").click()

    browser.wait_for_text("your sign-up was not approved")
    assert "look for that email" in browser.body_text
    assert "This account is disabled." not in browser.body_text


def typed_values(browser: Browser) -> list[str]:
    """What every field of the page holds, shown or not."""
    return browser.run("return [...document.querySelectorAll('input, textarea')].map((f) => f.value)")


def test_no_password_stays_in_the_sign_up_page_after_sign_up_or_sign_out(stack, browser):
    company, email = f"Shared Desk {uuid.uuid4().hex[:6]}", unique("shared")

    # when a tenant signs up, the form it filled in is emptied at once
    sign_up(browser, stack, company, email)
    browser.field("Confirmation code")
    assert TENANT_PASSWORD not in typed_values(browser)
    assert browser.run("return document.getElementById('signup-password').value") == ""
    assert browser.run("return document.getElementById('signup-company').value") == ""
    confirm(browser, mail(stack, email, "code"))
    wait_for_status(browser, "Awaiting approval")  # the confirmation still signed it in
    assert TENANT_PASSWORD not in typed_values(browser)

    # when it signs out, the next person at this computer finds nothing it typed
    browser.button("Sign out").click()
    browser.wait_for_text("You are signed out.")
    assert [value for value in typed_values(browser) if value] == []
    browser.button("Create an account").click()
    browser.field("Company name")
    assert [value for value in typed_values(browser) if value] == []

    # and one who signs in with the sign-in form leaves nothing either
    browser.button("Sign in to your account").click()
    browser.field("Email").fill(email)
    browser.field("Password").fill(TENANT_PASSWORD)
    browser.button("Sign in").click()
    wait_for_status(browser, "Awaiting approval")
    browser.button("Sign out").click()
    browser.wait_for_text("You are signed out.")
    assert [value for value in typed_values(browser) if value] == []


def test_the_admins_new_password_hint_and_refusal_state_the_admin_pools_policy(stack, browser):
    rule = admin_password_policy()  # template.json's AdminUserPool PasswordPolicy, in words
    assert rule == "at least 12 characters, with upper- and lower-case letters, a digit and a symbol"
    email = unique("policy-ops")
    temporary = add_admin(stack, email)
    browser.open(stack.outputs["apiUrl"] + "/admin")
    browser.field("Email").fill(email)
    browser.field("Password").fill(temporary)
    browser.button("Sign in").click()

    # the hint says the admin pool's policy, not the tenant pool's
    field = browser.field("New password")
    hint = browser.run("return document.getElementById('new-password-hint').textContent")
    assert hint == rule[0].upper() + rule[1:] + "."

    # a password the tenant pool would take (11 characters of every kind) is refused with it
    field.fill("Short-Pass1")
    browser.button("Set password and sign in").click()
    said = browser.wait_until(lambda: browser.error_next_to(field), "an error next to New password")
    assert said.endswith(f"Choose a password of {rule}.")

    # and one that meets it signs the admin in
    field.fill(ADMIN_PASSWORD)
    browser.button("Set password and sign in").click()
    browser.wait_for_text(f"Signed in as {email}")


def test_a_saved_admin_sign_in_the_api_refuses_is_told_to_sign_in_again(stack, browser):
    email = unique("stale-ops")
    admin_signs_in_for_the_first_time(browser, stack, email)
    # the saved ID token no longer passes the authorizer (as an earlier stack's
    # would not): still unexpired, so the page sends it and meets a 401
    browser.run("""
        for (const key of Object.keys(localStorage)) {
          if (key.endsWith('.idToken')) {
            const token = localStorage.getItem(key);
            localStorage.setItem(key, token.slice(0, -6) + (token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA'));
          }
        }""")

    browser.open(stack.outputs["apiUrl"] + "/admin")

    browser.wait_for_text("Your session ended: sign in again.")
    assert browser.field("Password").displayed
    assert "unauthorized" not in browser.body_text.lower()


def test_both_pages_work_by_keyboard_alone_at_375_px(stack, browser, screenshot):
    company, email = f"Keys & Co {uuid.uuid4().hex[:6]}", unique("keys")
    browser.viewport(*PHONE)

    def focus_now():
        """The focused element's accessible name and outline (read again if the
        console re-rendered its list meanwhile: it keeps the focus on the same button)."""
        for _ in range(5):
            try:
                focused = browser.focused
                return focused.label, browser.run(
                    "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth]",
                    focused)
            except WebDriverError as error:
                if error.error != "stale element reference":
                    raise
        raise AssertionError("the focused element kept changing")

    def tab_to(name: str, limit: int = 40) -> None:
        """Press Tab until the focus is on ``name``, which must show where it is."""
        for _ in range(limit):
            browser.press("\ue004")  # Tab
            label, outline = focus_now()
            if label == name:
                assert outline[0] != "none" and outline[1] != "0px", f"no visible focus on {name}"
                return
        raise AssertionError(f"Tab never reached {name!r}; the page shows:\n{browser.body_text}")

    def type_keys(text: str) -> None:
        browser.focused.type(text)

    # the tenant, by keyboard alone
    browser.open(stack.outputs["apiUrl"] + "/signup")
    browser.field("Company name")
    for label, value in (("Company name", company), ("Email", email), ("Password", TENANT_PASSWORD)):
        tab_to(label)
        type_keys(value)
    tab_to("Sign up")
    browser.press("\ue007")  # Enter
    browser.field("Confirmation code")
    tab_to("Confirmation code")
    type_keys(mail(stack, email, "code") + "\ue007")
    wait_for_status(browser, "Awaiting approval")
    assert browser.horizontal_overflow() == 0
    tenant_window = browser.window

    # the admin, by keyboard alone
    browser.new_window()
    browser.viewport(*PHONE)
    admin_email = unique("keyboard-ops")
    temporary = add_admin(stack, admin_email)
    browser.open(stack.outputs["apiUrl"] + "/admin")
    browser.field("Email")
    assert browser.horizontal_overflow() == 0
    tab_to("Email")
    type_keys(admin_email)
    tab_to("Password")
    type_keys(temporary + "\ue007")
    browser.field("New password")
    tab_to("New password")
    type_keys(ADMIN_PASSWORD + "\ue007")
    browser.button(company)
    assert browser.horizontal_overflow() == 0
    screenshot("admin-console-375.png")
    tab_to(company)
    browser.press("\ue007")
    browser.button("Approve")
    assert browser.horizontal_overflow() == 0
    tab_to("Approve")
    browser.press("\ue007")
    browser.wait_for_text(f"Approved {company}.")

    browser.switch_to(tenant_window)
    wait_for_status(browser, "Active")
    assert browser.horizontal_overflow() == 0


# --- the console for hundreds of tenants ---------------------------------------------------------
CROWD_STATUSES = ("active", "rejected", "timeout", "failed", "offboarded")  # not the waiting tab


def seed_tenants(stack: RunningStack, count: int, label: str) -> list[dict[str, str]]:
    """``count`` tenant records put straight in the table (as the record writer stores
    them, emailKey included), signed up long ago: no sign-up, no execution."""
    seeded = []
    for n in range(count):
        tenant = {"tenantId": str(uuid.uuid4()), "email": f"{label}-{n:03d}@example.com",
                  "name": f"Crowd {n:03d} Ltd", "status": CROWD_STATUSES[n % len(CROWD_STATUSES)]}
        seeded.append(tenant)
    for start in range(0, count, 25):
        stack.ddb.batch_write_item(RequestItems={stack.outputs["tableName"]: [{"PutRequest": {"Item": {
            "pk": {"S": t["tenantId"]}, "sk": {"S": "tenant"}, "status": {"S": t["status"]},
            "email": {"S": t["email"]}, "emailKey": {"S": t["email"].lower()}, "name": {"S": t["name"]},
            "createdAt": {"S": f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000Z"},
            "updatedAt": {"S": f"2026-02-01T00:{n // 60:02d}:{n % 60:02d}.000Z"},
        }}} for n, t in enumerate(seeded[start:start + 25], start)]})
    return seeded


def awaiting_decision(stack: RunningStack, email: str, name: str) -> str:
    """A tenant signed up (through Cognito's API, not the page) and awaiting a decision."""
    tenant_id = stack.sign_up_and_confirm(email, name)

    def asked() -> bool:
        item = stack.ddb.get_item(TableName=stack.outputs["tableName"],
                                  Key={"pk": {"S": tenant_id}, "sk": {"S": "tenant"}}).get("Item", {})
        return "pendingDecision" in item

    eventually(asked, TIMEOUT, lambda: f"{email} never awaited a decision", interval=0.1)
    return tenant_id


def dialog_open(browser: Browser) -> bool:
    return browser.run("return document.getElementById('confirm-dialog').open")


def test_the_console_finds_a_tenant_by_email_among_200_and_confirms_before_reject(
        stack, browser, screenshot):
    run = uuid.uuid4().hex[:6]
    seed_tenants(stack, 200, f"crowd-{run}")
    company, email = f"Needle {run} GmbH", f"needle-{run}@example.com"
    tenant_id = awaiting_decision(stack, email, company)
    admin_signs_in_for_the_first_time(browser, stack, unique("search-ops"))

    # the waiting tab is open first, and every tab says how many it holds
    tabs = browser.wait_until(lambda: browser.find_all("[role=tab]"), "the status tabs")
    assert [tab.label.split(" ")[0] for tab in tabs[:2]] == ["Awaiting", "Active"]
    assert browser.run("return document.querySelector('[aria-selected=true]').id") == "tab-onboarding"
    active = browser.wait_until(lambda: browser.run(
        "return document.querySelector('#tab-active .count').textContent"), "Active's count")
    assert int(active) >= 40 and tabs[1].label.startswith("Active")

    # when the admin types the beginning of the email, in capitals
    browser.field("Find a tenant").fill(f"NEEDLE-{run}")
    browser.button("Search").click()

    # then exactly that tenant is found, with its status and times in the admin's zone
    needle = browser.button(company)
    browser.wait_for_text(f"1 found for “NEEDLE-{run}”")
    row = browser.run("return arguments[0].closest('li').innerText", needle)
    assert email in row and "Awaiting approval" in row and "left" in row
    title = browser.run("return arguments[0].closest('li').querySelector('time').title", needle)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", title)
    screenshot("admin-console-search.png")

    # when the admin asks to reject it, a dialog names the tenant and what will happen
    needle.click()
    browser.field("Reason").fill("Duplicate of an existing account")
    browser.button("Reject").click()
    browser.wait_until(lambda: dialog_open(browser), "the confirmation dialog")
    said = browser.run("const d = document.getElementById('confirm-dialog');"
                       "return [d.querySelector('h2').textContent, d.innerText, "
                       "document.activeElement.textContent]")
    assert said[0] == f"Reject {company}?"
    assert email in said[1] and "login is disabled" in said[1] and "Stripe customer" in said[1]
    assert said[2] == "Cancel"  # the safe choice has the focus
    screenshot("admin-confirm-reject.png")

    # Cancel does nothing; Escape does nothing either
    browser.button("Cancel").click()
    assert not dialog_open(browser)
    assert browser.focused.label == "Reject"  # back where the admin was
    browser.button("Reject").click()
    browser.wait_until(lambda: dialog_open(browser), "the confirmation dialog again")
    browser.press("\ue00c")  # Escape
    browser.wait_until(lambda: not dialog_open(browser), "Escape to close the dialog")
    assert f"Rejected {company}" not in browser.body_text
    assert stack.record(tenant_id, "onboarding")

    # the named button rejects it
    browser.button("Reject").click()
    browser.button(f"Reject {company}").click()
    browser.wait_for_text(f"Rejected {company}.")
    assert stack.record(tenant_id, "rejected")


def test_a_deep_link_opens_the_tenant_in_place_of_the_list_at_375_px(stack, browser, screenshot):
    tenant = seed_tenants(stack, 1, f"linked-{uuid.uuid4().hex[:6]}")[0]
    browser.viewport(*PHONE)

    # an admin follows /admin#<tenantId> (from a notification) and signs in
    admin_signs_in_for_the_first_time(browser, stack, unique("link-ops"),
                                      path=f"/admin#{tenant['tenantId']}")

    # then that tenant's details are open, at the top, where the list was
    browser.wait_until(lambda: browser.run(
        "return document.getElementById('detail-heading').textContent") == tenant["name"],
        "the linked tenant's details")
    assert tenant["email"] in browser.body_text
    back = browser.button("Back to the list")
    assert browser.run("return document.getElementById('list-pane').getClientRects().length") == 0
    assert browser.run("return document.getElementById('detail-heading')"
                       ".getBoundingClientRect().top + window.scrollY") < 400
    assert browser.horizontal_overflow() == 0
    screenshot("admin-tenant-375.png")

    # and the way back shows the list again
    back.click()
    browser.field("Find a tenant")
    assert browser.run("return location.hash") == ""
    assert browser.horizontal_overflow() == 0
