"""The subscriber store on the local stack as `make run` starts it, with SES's
quotas enforced (LOCAL_ENFORCE_SES_QUOTAS=1): more tenants than SES's list
quotas allow, each with its own SES tenant; a tenant's subscribers through the
API, with real ID tokens checked as API Gateway checks them; and nothing of a
tenant left once it is rejected or offboarded."""
import pytest

from scripts.bench.load import LoadRun, print_report
from tests.support.stacks import PASSWORD, RunningStack, call

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("subscribers") / "state",
                           LOCAL_ENFORCE_SES_QUOTAS="1")
    yield running
    running.stop()


def id_token(stack, email):
    return stack.cognito.initiate_auth(
        ClientId=stack.outputs["userPoolClientId"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]


def subscriber_items(stack, tenant_id):
    return stack.ddb.query(
        TableName=stack.outputs["tableName"], KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": f"{tenant_id}#subscribers"}})["Items"]


def ses_tenants(stack):
    return {t["TenantName"] for t in stack.sesv2.list_tenants()["Tenants"]}


def rejected_tenants(stack):
    """The ids of the tenants whose record says rejected (the status index; the
    load run below is the only one of this module's stack to reject any)."""
    return [item["pk"]["S"] for item in stack.ddb.query(
        TableName=stack.outputs["tableName"], IndexName="byStatus",
        KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "rejected"}})["Items"]]


def test_twenty_five_tenants_onboard_under_ses_quotas_each_with_its_own_ses_tenant(stack):
    # 26 sign-ups, the first rejected: 25 approved, more than one list and more
    # than 20 topics, which only the subscriber store fits
    report = LoadRun(stack.outputs, stack.state_dir, workers=8).run(26, reject_every=26, seconds=180)
    print_report(report)

    assert report["problems"] == []
    assert (report["active"], report["rejected"], report["failed"]) == (25, 1, 0)
    assert report["sesTenants"] == 25  # one each, and the rejected gave its back
    assert stack.sesv2.list_contact_lists()["ContactLists"] == []
    # the rejected tenant had an SES tenant, and nothing of it is left
    [rejected] = rejected_tenants(stack)
    released = stack.record(rejected, "rejected")["released"]["M"]["contactList"]["M"]
    assert released["sesTenant"]["S"] == f"tenant-{rejected}"
    with pytest.raises(stack.sesv2.exceptions.NotFoundException):
        stack.sesv2.get_tenant(TenantName=f"tenant-{rejected}")
    assert f"tenant-{rejected}" not in ses_tenants(stack)
    # (a rejected tenant was never active, so it never had subscribers to give
    # back: offboarding, below, shows subscriber items removed)


def test_a_tenant_keeps_its_subscribers_and_no_other_tenant_sees_them(stack):
    ada = stack.sign_up_and_confirm("ada@example.com", "Ada Ltd")
    bob = stack.sign_up_and_confirm("bob@example.com", "Bob Ltd")
    for tenant_id in (ada, bob):
        assert stack.finalize({"taskToken": stack.task_token(tenant_id), "status": "approved"})[0] == 200
        stack.record(tenant_id, "active")
    ada_token, bob_token = id_token(stack, "ada@example.com"), id_token(stack, "bob@example.com")

    assert call(stack, "POST", "/me/subscribers", ada_token, {"email": "Grace@example.com"})[0] == 201
    assert call(stack, "POST", "/me/subscribers", ada_token, {"email": "grace@EXAMPLE.com"})[0] == 200
    status, imported = call(stack, "POST", "/me/subscribers/import", ada_token,
                            [{"email": f"s{n}@example.com"} for n in range(120)] + [{"email": "bad"}])
    assert status == 200 and (imported["added"], imported["invalid"], imported["count"]) == (120, 1, 121)
    status, listed = call(stack, "GET", "/me/subscribers?limit=5", ada_token)
    assert status == 200 and listed["count"] == 121 and len(listed["subscribers"]) == 5
    assert call(stack, "DELETE", "/me/subscribers/grace@example.com", ada_token)[0] == 204

    # another tenant's token: none of them, and nothing it can remove
    assert call(stack, "GET", "/me/subscribers", bob_token)[1] == {
        "subscribers": [], "count": 0, "nextToken": None}
    assert call(stack, "DELETE", "/me/subscribers/s1@example.com", bob_token)[0] == 404
    assert call(stack, "GET", f"/me/subscribers?nextToken={listed['nextToken']}", bob_token)[0] == 400
    # the count is exact, and no token means no answer
    assert int(stack.record(ada, "active")["subscribers"]["N"]) == 120 == len(subscriber_items(stack, ada))
    assert call(stack, "GET", "/me/subscribers")[0] == 401

    # offboarded: no subscriber item and no SES tenant of it is left
    assert call(stack, "POST", f"/tenants/{ada}/offboarding", stack.admin_token,
                {"reason": "leaving"})[0] == 202
    done = stack.record(ada, "offboarded", seconds=60)
    assert subscriber_items(stack, ada) == [] and done["subscribers"]["N"] == "0"
    assert f"tenant-{ada}" not in ses_tenants(stack) and f"tenant-{bob}" in ses_tenants(stack)
