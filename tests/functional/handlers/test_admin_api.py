"""Admins decide by tenant id: listing by status (paged, from the index),
one tenant, and decisions that resolve exactly once."""
import json
import threading

import pytest
from chalice.test import Client

from chalicelib.events import APPROVAL_REQUESTED as APPROVAL
from tests.support.stage import STAGE, finalize_body, tenant


def get(client, path):
    response = client.http.get(path)
    return response.status_code, json.loads(response.body)


def decide(client, tenant_id, body):
    response = client.http.post(
        f"/tenants/{tenant_id}/decision",
        headers={"Content-Type": "application/json"},
        body=json.dumps(body) if not isinstance(body, (str, bytes)) else body,
    )
    return response.status_code, json.loads(response.body)


def waiting(stage, n, seconds=15):
    """A tenant whose wait began and whose approval request went out."""
    t = tenant(n)
    execution = stage.start(t)
    stage.wait_for_token(execution)
    stage.wait_until_asked(t["tenantId"], seconds)
    return t, execution


# --- listing -------------------------------------------------------------------
def test_listing_by_status_shows_pending_tenants_with_decide_by(stage, client):
    first, _ = waiting(stage, 40)
    second, _ = waiting(stage, 41)

    status, body = get(client, "/tenants?status=onboarding")

    assert status == 200
    listed = {t["tenantId"]: t for t in body["tenants"]}
    assert set(listed) == {first["tenantId"], second["tenantId"]}
    assert listed[first["tenantId"]]["name"] == first["name"]
    assert listed[first["tenantId"]]["decideBy"] > listed[first["tenantId"]]["createdAt"]
    assert body["nextToken"] is None
    assert "taskToken" not in json.dumps(body)


def test_listing_other_statuses_finds_decided_tenants_only_there(stage, client):
    t, execution = waiting(stage, 42)
    assert decide(client, t["tenantId"], {"status": "approved"})[0] == 200
    stage.wait_for_end(execution)

    assert [x["tenantId"] for x in get(client, "/tenants?status=active")[1]["tenants"]] == [
        t["tenantId"]
    ]
    assert get(client, "/tenants?status=onboarding")[1]["tenants"] == []
    assert "decideBy" not in get(client, "/tenants?status=active")[1]["tenants"][0]


def test_listing_pages_with_next_token_without_repeats(stage, client):
    ids = {waiting(stage, n)[0]["tenantId"] for n in range(43, 48)}

    seen, token, pages = [], None, 0
    while True:
        path = "/tenants?status=onboarding&limit=2" + (f"&nextToken={token}" if token else "")
        status, body = get(client, path)
        assert status == 200
        assert len(body["tenants"]) <= 2
        seen += [t["tenantId"] for t in body["tenants"]]
        pages += 1
        token = body["nextToken"]
        if not token:
            break

    assert sorted(seen) == sorted(ids)
    assert pages >= 3


def dynamodb_calls(*fields):
    """The app's DynamoDB calls from now on: (operation, each of ``fields`` of its request)."""
    import boto3

    from chalicelib import dependencies as deps

    calls = []
    session = boto3.session.Session(region_name="us-east-1")
    session.events.register("before-call.dynamodb", lambda event_name, params, **_: calls.append(
        (event_name.rsplit(".", 1)[-1],
         *(json.loads(params["body"]).get(field) for field in fields))))
    deps.override("session", session)
    return calls


def test_listing_uses_the_index_not_a_scan(stage, client):
    calls = dynamodb_calls("IndexName")

    get(client, "/tenants?status=onboarding")

    assert calls == [("Query", "byStatus")]


@pytest.mark.parametrize("query, fragment", [
    ("status=pending", "status must be one of"),
    ("status=onboarding&limit=0", "limit must be a whole number"),
    ("status=onboarding&limit=abc", "limit must be a whole number"),
    ("status=onboarding&nextToken=not-a-token", "nextToken is not one this API returned"),
    ("status=onboarding&order=name", "unknown query parameter(s): order"),
])
def test_listing_rejects_bad_queries_with_a_clear_400(client, query, fragment):
    status, body = get(client, f"/tenants?{query}")

    assert status == 400
    assert fragment in body["Message"]


# --- one tenant ----------------------------------------------------------------
def test_show_returns_a_pending_tenant_without_its_token(stage, client):
    t, _ = waiting(stage, 50)

    status, body = get(client, f"/tenants/{t['tenantId']}")

    assert status == 200
    assert body["status"] == "onboarding"
    assert body["email"] == t["email"]
    assert body["decideBy"] and body["awaitingDecisionSince"]
    assert body["list"] == f"subscribers-{t['tenantId']}"
    assert body["sesTenant"] == f"tenant-{t['tenantId']}" and body["listMode"] == "subscriber-store"
    assert "pendingDecision" not in body and "taskToken" not in json.dumps(body)


def test_show_of_an_unknown_tenant_is_404(client):
    status, body = get(client, "/tenants/00000000-0000-4000-8000-999999999999")

    assert status == 404
    assert "no tenant" in body["Message"]


# --- deciding ------------------------------------------------------------------
def test_approving_by_id_activates_and_records_who_and_when(stage, client):
    t, execution = waiting(stage, 51)

    status, body = decide(client, t["tenantId"], {"status": "approved", "reason": "looks good"})

    assert status == 200
    assert body["message"] == "Tenant onboarding approved successfully"
    assert body["decidedBy"] == "local"
    assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"
    shown = get(client, f"/tenants/{t['tenantId']}")[1]
    assert shown["status"] == "active"
    assert shown["decision"] == {
        "status": "approved", "reason": "looks good",
        "decidedBy": "local", "decidedAt": body["decidedAt"],
    }
    events = stage.events()
    assert [e["detail-type"] for e in events] == [APPROVAL, "Tenant Onboarding Complete"]
    assert events[1]["detail"]["decidedBy"] == "local"


def test_rejecting_by_id_needs_a_reason_and_carries_it(stage, client):
    t, execution = waiting(stage, 52)

    assert decide(client, t["tenantId"], {"status": "rejected"}) == (
        400, {"Code": "BadRequestError", "Message": "a rejection needs a reason"},
    )
    status, _ = decide(client, t["tenantId"], {"status": "rejected", "reason": "fraud check"})

    assert status == 200
    stage.wait_for_end(execution)
    shown = get(client, f"/tenants/{t['tenantId']}")[1]
    assert (shown["status"], shown["decision"]["reason"]) == ("rejected", "fraud check")
    assert stage.events()[-1]["detail"]["reason"] == "fraud check"


def test_deciding_an_unknown_tenant_is_404(client):
    status, body = decide(client, "00000000-0000-4000-8000-999999999999", {"status": "approved"})

    assert status == 404


def test_deciding_a_tenant_not_awaiting_a_decision_is_409_with_its_status(stage, client):
    t, execution = waiting(stage, 53)
    decide(client, t["tenantId"], {"status": "approved"})
    stage.wait_for_end(execution)

    status, body = decide(client, t["tenantId"], {"status": "rejected", "reason": "late"})

    assert status == 409
    assert "not awaiting a decision (status active)" in body["Message"]


def test_deciding_twice_resolves_once(stage, client):
    t, execution = waiting(stage, 54)

    first = decide(client, t["tenantId"], {"status": "approved"})
    second = decide(client, t["tenantId"], {"status": "rejected", "reason": "second thoughts"})

    assert first[0] == 200
    assert second[0] == 409
    stage.wait_for_end(execution)
    assert get(client, f"/tenants/{t['tenantId']}")[1]["status"] == "active"
    assert [e["detail-type"] for e in stage.events()] == [APPROVAL, "Tenant Onboarding Complete"]


def test_two_admins_deciding_at_once_resolve_exactly_once(stage):
    t, execution = waiting(stage, 55)
    answers = []
    barrier = threading.Barrier(2)

    def admin(body):
        with Client(stage.app, stage_name=STAGE) as own_client:
            barrier.wait()
            answers.append(decide(own_client, t["tenantId"], body))

    threads = [
        threading.Thread(target=admin, args=({"status": "approved"},)),
        threading.Thread(target=admin, args=({"status": "rejected", "reason": "no"},)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in answers) == [200, 409]
    stage.wait_for_end(execution)
    outcomes = [e["detail-type"] for e in stage.events() if e["detail-type"] != APPROVAL]
    assert len(outcomes) == 1


def test_the_token_route_still_works_and_then_the_id_route_says_409(stage, client):
    t, execution = waiting(stage, 56)
    token = stage.wait_for_token(execution)

    response = client.http.post(
        "/tenant/finalize", headers={"Content-Type": "application/json"},
        body=finalize_body(token, "approved"),
    )

    assert response.status_code == 200
    stage.wait_for_end(execution)
    assert decide(client, t["tenantId"], {"status": "approved"})[0] == 409


@pytest.mark.parametrize("body, status, fragment", [
    ("", 400, "request body is required"),
    ("[1]", 400, "must be a JSON object"),
    ('{"status": "maybe"}', 400, 'status must be "approved" or "rejected"'),
    ('{"status": "approved", "taskToken": "x"}', 400, "unknown field(s): taskToken"),
    ('{"status": "rejected", "reason": "   "}', 400, "a rejection needs a reason"),
    ('{"status": "rejected", "reason": "spam\\u200b"}', 400,
     "reason must not contain invisible, control or text-direction characters (U+200B)"),
    ('{"status": "rejected", "reason": "Z\\u0336\\u0337\\u0338\\u0339\\u033a"}', 400,
     "reason must not stack more than 4 accents or marks on one letter"),
])
def test_decision_bodies_are_validated_before_anything_happens(stage, client, body, status, fragment):
    t, _ = waiting(stage, 57)

    answer = decide(client, t["tenantId"], body)

    assert answer[0] == status
    assert fragment in answer[1]["Message"]
    assert get(client, f"/tenants/{t['tenantId']}")[1]["status"] == "onboarding"


def test_a_claim_left_by_an_admin_who_died_expires(stage, client):
    t, execution = waiting(stage, 60)
    # an admin claimed the decision two minutes ago, then their Lambda died
    stage.ddb.update_item(
        TableName=stage.table_name,
        Key={"pk": {"S": t["tenantId"]}, "sk": {"S": "tenant"}},
        UpdateExpression="SET decisionClaim = :c",
        ExpressionAttributeValues={":c": {"M": {
            "status": {"S": "approved"}, "decidedBy": {"S": "gone"},
            "claimedAt": {"S": "2000-01-01T00:00:00.000Z"},
        }}},
    )

    assert decide(client, t["tenantId"], {"status": "approved"})[0] == 200
    assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"


def test_a_new_wait_token_voids_a_claim_on_the_old_one(stage, client):
    from chalicelib import dependencies as deps

    t, execution = waiting(stage, 61)
    repository = deps.tenants()
    repository.claim_decision(
        t["tenantId"], {"status": "approved", "decidedBy": "x", "claimedAt": "2999-01-01T00:00:00.000Z"},
        "2000-01-01T00:00:00.000Z",
    )
    pending = stage.record(t["tenantId"])["pendingDecision"]
    # the wait task is retried: it records the (here: same) token again
    assert repository.record_pending_decision(t["tenantId"], pending, pending["taskToken"])

    assert decide(client, t["tenantId"], {"status": "approved"})[0] == 200


@pytest.mark.parametrize("path", [
    "/tenants/" + "x" * 3000,
    "/tenants/not%20an%20id",
    "/tenants/" + "y" * 3000 + "/decision",
])
def test_ids_that_cannot_exist_are_404_not_500(client, path):
    if path.endswith("/decision"):
        response = client.http.post(path, headers={"Content-Type": "application/json"},
                                    body='{"status": "approved"}')
    else:
        response = client.http.get(path)

    assert response.status_code == 404


@pytest.mark.parametrize("query", [
    "limit=%C2%B2",  # a superscript two is a digit to str.isdigit()
    "nextToken=" + __import__("base64").urlsafe_b64encode(json.dumps(
        {"pk": "", "sk": "tenant", "status": "onboarding", "createdAt": "x"}).encode()).decode(),
    "nextToken=" + __import__("base64").urlsafe_b64encode(json.dumps(
        {"pk": "a" * 3000, "sk": "tenant", "status": "onboarding",
         "createdAt": "2026-11-26T10:00:00.000Z"}).encode()).decode(),
])
def test_odd_listing_queries_are_400_not_500(client, query):
    status, body = get(client, f"/tenants?status=onboarding&{query}")

    assert status == 400
    assert body["Message"]


def test_an_offboarding_reason_with_invisible_characters_is_400_with_a_sentence(client):
    response = client.http.post(
        "/tenants/00000000-0000-4000-8000-999999999999/offboarding",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"reason": "left \u2066quietly\u2069"}))

    assert response.status_code == 400
    assert json.loads(response.body) == {"Code": "BadRequestError", "Message": (
        "reason must not contain invisible, control or text-direction characters (U+2066, U+2069)")}


# --- one status at a time, counted; search by email or id; sort ----------------
def seed(stage, n, status="onboarding", email=None, created=None, updated=None):
    """A tenant record put straight in the table (as the writer stores it), no execution."""
    t = tenant(n)
    email = email or t["email"]
    created = created or f"2026-11-01T00:00:{n % 60:02d}.000Z"
    stage.ddb.put_item(TableName=stage.table_name, Item={
        "pk": {"S": t["tenantId"]}, "sk": {"S": "tenant"}, "status": {"S": status},
        "email": {"S": email}, "emailKey": {"S": email.lower()}, "name": {"S": t["name"]},
        "createdAt": {"S": created}, "updatedAt": {"S": updated or created},
    })
    return t["tenantId"]


def ids(body):
    return [t["tenantId"] for t in body["tenants"]]


def test_counts_give_every_status_its_number_of_tenants(stage, client):
    for n in range(3):
        seed(stage, 100 + n, "onboarding")
    seed(stage, 110, "active")
    seed(stage, 111, "rejected")

    status, body = get(client, "/tenants/counts")

    assert status == 200
    assert body["counts"] == {"onboarding": 3, "active": 1, "rejected": 1, "failed": 0,
                              "timeout": 0, "offboarding": 0, "offboarded": 0}


def test_counts_are_count_queries_of_the_status_index(stage, client):
    calls = dynamodb_calls("IndexName", "Select")

    get(client, "/tenants/counts")

    assert calls == [("Query", "byStatus", "COUNT")] * 7


def test_an_exact_email_finds_that_tenant_whatever_its_case_or_status(stage, client):
    wanted = seed(stage, 120, "active", email="Grace.Hopper@Example.com")
    seed(stage, 121, "onboarding", email="grace.hopper@example.org")
    seed(stage, 122, "rejected", email="grace@example.com")

    status, body = get(client, "/tenants?email=GRACE.HOPPER%40example.COM&match=exact")

    assert status == 200
    assert ids(body) == [wanted]
    assert body["tenants"][0]["email"] == "Grace.Hopper@Example.com"  # as the tenant gave it
    assert body["tenants"][0]["status"] == "active"
    assert (body["email"], body["match"]) == ("grace.hopper@example.com", "exact")


def test_an_email_prefix_finds_every_tenant_it_begins_in_email_order_page_by_page(stage, client):
    found = [seed(stage, 130 + n, status, email=f"ops{n}@acme.test")
             for n, status in enumerate(["onboarding", "active", "failed"])]
    seed(stage, 139, "active", email="opal@acme.test")

    first = get(client, "/tenants?email=Ops&limit=2")[1]
    second = get(client, f"/tenants?email=Ops&limit=2&nextToken={first['nextToken']}")[1]

    assert ids(first) + ids(second) == found
    assert second["nextToken"] is None


def test_the_email_search_is_a_query_of_the_email_index_not_a_scan(stage, client):
    seed(stage, 140, email="scan@example.com")
    calls = dynamodb_calls("IndexName")

    assert ids(get(client, "/tenants?email=scan")[1]) == [tenant(140)["tenantId"]]
    assert calls == [("Query", "byEmail")]


def test_a_tenant_made_by_the_workflow_is_found_by_its_email(stage, client):
    t, _ = waiting(stage, 141)

    body = get(client, f"/tenants?email={t['email'].upper()}&match=exact")[1]

    assert ids(body) == [t["tenantId"]]
    assert body["tenants"][0]["decideBy"]


def test_a_tenant_id_finds_that_tenant_and_an_unknown_one_finds_none(stage, client):
    wanted = seed(stage, 150, "timeout")

    assert ids(get(client, f"/tenants?tenantId={wanted}")[1]) == [wanted]
    assert get(client, f"/tenants?tenantId={wanted}")[1]["tenants"][0]["status"] == "timeout"
    assert get(client, "/tenants?tenantId=00000000-0000-4000-8000-999999999999") == (200, {
        "tenantId": "00000000-0000-4000-8000-999999999999", "tenants": [], "nextToken": None})


def test_last_changed_sorts_a_status_newest_change_first_page_by_page(stage, client):
    # signed up in the order 0, 1, 2, 3; changed last in the order 2, 0, 3, 1
    changed = {0: "2026-11-20T00:00:02.000Z", 1: "2026-11-20T00:00:04.000Z",
               2: "2026-11-20T00:00:01.000Z", 3: "2026-11-20T00:00:03.000Z"}
    tid = {n: seed(stage, 160 + n, "active", created=f"2026-11-01T00:00:0{n}.000Z",
                   updated=changed[n]) for n in changed}
    seed(stage, 170, "onboarding", updated="2026-11-30T00:00:00.000Z")

    by_signup = get(client, "/tenants?status=active&sort=created")[1]
    first = get(client, "/tenants?status=active&sort=updated&limit=3")[1]
    rest = get(client, f"/tenants?status=active&sort=updated&limit=3&nextToken={first['nextToken']}")[1]

    assert ids(by_signup) == [tid[3], tid[2], tid[1], tid[0]]
    assert ids(first) + ids(rest) == [tid[1], tid[3], tid[0], tid[2]]
    assert first["sort"] == "updated" and rest["nextToken"] is None


@pytest.mark.parametrize("query, fragment", [
    ("email=", "email must not be empty"),
    ("email=%20%20", "email must not be empty"),
    ("email=a%20b", "email must not contain spaces"),
    ("email=ada%E2%80%8B", "email must not contain invisible, control or text-direction characters"),
    ("email=" + "a" * 255, "email must be at most 254 characters"),
    ("email=ada&match=fuzzy", "match must be one of prefix, exact"),
    ("match=exact", "match needs an email to match"),
    ("email=ada&status=active", "a search looks in every status: leave out status"),
    ("email=ada&tenantId=00000000-0000-4000-8000-000000000001", "search by email or by tenantId, not both"),
    ("tenantId=not%20an%20id", "tenantId must be a tenant id"),
    ("tenantId=" + "x" * 200, "tenantId must be a tenant id"),
    ("tenantId=00000000-0000-4000-8000-000000000001&nextToken=abc", "leave out nextToken"),
    ("status=active&sort=name", "sort must be one of created, updated"),
    ("email=ada&nextToken=not-a-token", "nextToken is not one this API returned"),
    ("status=active&sort=updated&nextToken=not-a-token", "nextToken is not one this API returned"),
])
def test_bad_searches_and_sorts_are_a_clear_400(client, query, fragment):
    status, body = get(client, f"/tenants?{query}")

    assert status == 400
    assert fragment in body["Message"]


def test_a_page_token_of_another_search_or_sort_is_400(stage, client):
    for n in range(3):
        seed(stage, 180 + n, "active", email=f"tok{n}@example.com")
    email_token = get(client, "/tenants?email=tok&limit=1")[1]["nextToken"]
    updated_token = get(client, "/tenants?status=active&sort=updated&limit=1")[1]["nextToken"]
    created_token = get(client, "/tenants?status=active&limit=1")[1]["nextToken"]

    assert get(client, f"/tenants?email=zzz&nextToken={email_token}")[0] == 400
    assert get(client, f"/tenants?status=failed&sort=updated&nextToken={updated_token}")[0] == 400
    assert get(client, f"/tenants?status=active&sort=updated&nextToken={created_token}")[0] == 400
    assert get(client, f"/tenants?status=active&nextToken={updated_token}")[0] == 400
