"""End-to-end: an admin added with add-admin is told of every tenant waiting for a decision.

On a local stack started as `make run` starts it: `add-admin` subscribes the
admin to the stage's admin notifications topic, SNS's request to confirm
lands in the outbox, and once its link is opened each tenant that then waits
for a decision brings one readable email, whose console link opens that
tenant. `remove-admin` ends it. The rule, the topic and the subscription are
the template's own (scripts/local/resources.py), delivered by the local
stack's EventBridge and SNS (scripts/local/sns.py).
"""
import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.support import eventually
from tests.support.stacks import RunningStack, call

pytestmark = pytest.mark.e2e

ADMIN = "notified-admin@example.com"
CONFIRMATION = "AWS Notification - Subscription Confirmation"
REQUESTED = "Tenant Onboarding Approval Requested"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("notify") / "state")
    yield running
    running.stop()


def mails_to(stack, to):
    path = stack.state_dir / "outbox.jsonl"
    return [m for m in map(json.loads, path.read_text().splitlines()) if m.get("to") == to]


def notifications(stack, to):
    return [m for m in mails_to(stack, to) if "body" in m and m["subject"] != CONFIRMATION]


def admin_cli(stack, *args):
    result = stack.run_admin(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def waiting_tenant(stack, email, name):
    """A tenant whose wait for a decision began: its Approval Requested event is out
    (and with it any notification: the rule delivers within PutEvents)."""
    tenant_id = stack.sign_up_and_confirm(email, name)
    stack.wait_for_event(tenant_id, REQUESTED)
    return tenant_id


def confirmation_link(stack, to):
    confirmations = eventually(
        lambda: [m for m in mails_to(stack, to) if m.get("subject") == CONFIRMATION], 10,
        f"no subscription confirmation for {to} in the outbox")
    assert len(confirmations) == 1
    assert set(confirmations[0]) == {"to", "subject", "body", "sentAt"}
    [link] = re.findall(r"^http\S+$", confirmations[0]["body"], re.MULTILINE)
    return link


def open_link(link):
    with urllib.request.urlopen(link, timeout=10) as page:
        assert page.status == 200 and "Subscription confirmed" in page.read().decode()


def test_an_added_admin_confirms_then_gets_one_readable_notification_per_waiting_tenant(stack):
    said = admin_cli(stack, "add-admin", ADMIN)

    assert "SNS mailed them a link" in said
    link = confirmation_link(stack, ADMIN)
    assert "temporaryPassword" in mails_to(stack, ADMIN)[0]  # Cognito's invitation came first
    # before the link is opened, nothing is mailed to the admin
    early = waiting_tenant(stack, "early@example.com", "Early Ltd")
    assert notifications(stack, ADMIN) == []

    open_link(link)
    tenants = {
        waiting_tenant(stack, "ada-notified@example.com", "Ada Ltd"): "Ada Ltd",
        # a tenant's strings are data: a placeholder in a name is not filled in
        waiting_tenant(stack, "lit@example.com", "<tenantId> & <b>Co</b>"): "<tenantId> & <b>Co</b>",
    }

    mailed = notifications(stack, ADMIN)
    assert len(mailed) == len(tenants)  # one each, none for the tenant before the confirmation
    by_tenant = {}
    for mail in mailed:
        assert mail["subject"] and mail["sentAt"]
        [tenant_id] = [t for t in tenants if f"Tenant id: {t}" in mail["body"]]
        by_tenant[tenant_id] = mail["body"]
    assert set(by_tenant) == set(tenants) and early not in json.dumps(mailed)
    token = stack.admin_token
    for tenant_id, body in by_tenant.items():
        lines = body.splitlines()
        assert lines[0] == f"{REQUESTED} (stage local)"
        assert f"Company:   {tenants[tenant_id]}" in lines
        assert re.search(r"^Decide by: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(UTC\)$", body,
                         re.MULTILINE)
        [console] = [line for line in lines if "/admin#" in line]
        assert console == f"{stack.outputs['apiUrl']}/admin#{tenant_id}"
        # the link works: the console page, and the tenant its fragment names, from the admin API
        url = urlsplit(console)
        with urllib.request.urlopen(f"{url.scheme}://{url.netloc}{url.path}", timeout=10) as page:
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        status, shown = call(stack, "GET", f"/tenants/{url.fragment}", token)
        assert status == 200 and shown["tenantId"] == tenant_id
        assert shown["name"] == tenants[tenant_id]


def test_add_admin_again_changes_nothing_and_remove_admin_stops_the_mail(stack):
    admin = "removed-admin@example.com"
    admin_cli(stack, "add-admin", admin)
    open_link(confirmation_link(stack, admin))
    waiting_tenant(stack, "before-removal@example.com", "Before Ltd")
    assert len(notifications(stack, admin)) == 1
    sent = len(mails_to(stack, admin))

    again = admin_cli(stack, "add-admin", admin)
    assert "already" in again and len(mails_to(stack, admin)) == sent  # no second confirmation

    removed = admin_cli(stack, "remove-admin", admin)
    assert "disabled" in removed and "Removed 1 subscription" in removed
    user = stack.cognito.admin_get_user(UserPoolId=stack.outputs["adminUserPoolId"], Username=admin)
    assert user["Enabled"] is False
    waiting_tenant(stack, "after-removal@example.com", "After Ltd")
    assert len(notifications(stack, admin)) == 1
    again = admin_cli(stack, "remove-admin", admin)  # idempotent, and says so
    assert "no confirmed subscription" in again


def test_a_wrong_confirmation_link_confirms_nothing(stack):
    bad = stack.outputs["awsEndpoint"] + "/confirmation.html?TopicArn=" + \
        stack.outputs["adminNotificationsTopicArn"] + "&Token=forged"

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)

    assert refused.value.code == 400
