"""A tenant's own subscribers, over /me/subscribers (tenant pool ID token).

The tenant id comes only from the token's sub: no tenant reads or changes
another's. Counts are exact under retries and concurrency; every refusal is
a 4xx with a sentence.
"""
import json
import threading
import urllib.parse

import pytest
from chalice.test import Client

from chalicelib import dependencies as deps
from chalicelib.clock import utc_now
from chalicelib.subscribers import NewSubscriber, subscribers_of
from chalicelib.tenants import NewTenant
from tests.support import unsigned_id_token
from tests.support.stage import STAGE, tenant

ADA = tenant(300)
BOB = tenant(301)


def active(t, status="active"):
    """A tenant whose onboarding ended ``status`` (its record, as the workflow leaves it)."""
    deps.tenants().create(NewTenant(t["tenantId"], t["email"], t["name"]), utc_now())
    if status != "onboarding":
        deps.tenants().finish(t["tenantId"], status, utc_now())
    return t


def call(client, method, path, t=ADA, body=None, content_type="application/json"):
    headers = {"Authorization": unsigned_id_token(t["tenantId"], t["email"])}
    if body is not None:
        headers["Content-Type"] = content_type
        body = body if isinstance(body, str) else json.dumps(body)
    response = getattr(client.http, method.lower())(path, headers=headers, body=body)
    return response.status_code, json.loads(response.body) if response.body else None


def count(t=ADA):
    return int(deps.tenants().get(t["tenantId"]).get("subscribers", 0))


def items(t=ADA):
    table = deps.settings().tenant_table_name
    return deps._client("dynamodb").query(
        TableName=table, KeyConditionExpression="pk = :p", ConsistentRead=True,
        ExpressionAttributeValues={":p": {"S": subscribers_of(t["tenantId"])}})["Items"]


# --- add -------------------------------------------------------------------------------------
def test_adding_a_subscriber_is_201_and_again_in_another_case_is_200_counting_once(stage, client):
    active(ADA)

    first = call(client, "POST", "/me/subscribers", body={"email": "Grace@Example.com", "name": "Grace"})
    again = call(client, "POST", "/me/subscribers", body={"email": "grace@example.COM"})

    assert first[0] == 201 and first[1]["added"] is True and first[1]["count"] == 1
    assert first[1]["subscriber"]["email"] == "Grace@Example.com"  # shown as given
    assert first[1]["subscriber"]["name"] == "Grace" and first[1]["subscriber"]["subscribedAt"]
    assert again[0] == 200 and again[1]["added"] is False
    assert again[1]["subscriber"]["email"] == "Grace@Example.com"
    assert count() == 1 and len(items()) == 1
    assert items()[0]["sk"]["S"] == "grace@example.com"  # stored lower-cased


@pytest.mark.parametrize("email, sentence", [
    (None, "email is required"),
    ("", "email is required"),
    ("ada.example.com", "exactly one @"),
    ("ada@@example.com", "exactly one @"),
    ("a@b@example.com", "exactly one @"),
    ("ada @example.com", "spaces, control or invisible"),
    ("ada\u200b@example.com", "spaces, control or invisible"),
    ("ada\x1b@example.com", "spaces, control or invisible"),
    ("ada@example", "must contain a dot"),
    ("ada@.com", "must contain a dot"),
    ("@example.com", "a name before the @"),
    ("ada@", "a name before the @"),
    ("a" * 65 + "@example.com", "at most 64 characters"),
    ("a@" + "b" * 250 + ".com", "at most 254 characters"),
])
def test_an_email_no_subscriber_can_have_is_400_with_a_sentence(stage, client, email, sentence):
    active(ADA)

    status, body = call(client, "POST", "/me/subscribers", body={"email": email})

    assert status == 400 and sentence in body["Message"]
    assert count() == 0


@pytest.mark.parametrize("body, sentence", [
    ("not json", "not valid JSON"),
    ('["ada@example.com"]', "must be a JSON object"),
    ('{"email": "ada@example.com", "list": "other"}', "unknown field(s): list"),
    ('{"email": "ada@example.com", "name": 7}', "name must be a string"),
    ('{"email": "ada@example.com", "name": "Ada\\u202e"}', "invisible"),
])
def test_a_body_that_is_not_a_subscriber_is_400(stage, client, body, sentence):
    active(ADA)

    status, answer = call(client, "POST", "/me/subscribers", body=body)

    assert status == 400 and sentence in answer["Message"]


@pytest.mark.parametrize("status", ["onboarding", "rejected", "timeout", "failed"])
def test_an_onboarding_that_is_not_active_is_409_naming_its_status(stage, client, status):
    active(ADA, status)

    answers = [call(client, "POST", "/me/subscribers", body={"email": "ada@example.com"}),
               call(client, "GET", "/me/subscribers"),
               call(client, "DELETE", "/me/subscribers/ada@example.com"),
               call(client, "POST", "/me/subscribers/import", body=[{"email": "ada@example.com"}])]

    for code, body in answers:
        assert code == 409 and f"is {status}" in body["Message"]
    assert items() == []


def test_a_tenant_without_a_record_yet_is_404(stage, client):
    status, body = call(client, "GET", "/me/subscribers")

    assert status == 404 and "not started" in body["Message"]


# --- list -----------------------------------------------------------------------------------
def test_listing_is_newest_first_in_pages_that_repeat_nothing(stage, client, monkeypatch):
    active(ADA)
    ticks = iter(f"2026-12-01T10:00:{n:02d}.000Z" for n in range(60))
    with deps.within("api_handler"):  # the routes' own store
        monkeypatch.setattr(deps.subscriber_store(), "_clock", lambda: next(ticks))
    for n in range(5):
        assert call(client, "POST", "/me/subscribers", body={"email": f"s{n}@example.com"})[0] == 201

    seen, token = [], None
    while True:
        status, page = call(client, "GET", "/me/subscribers?limit=2"
                            + (f"&nextToken={token}" if token else ""))
        assert status == 200 and len(page["subscribers"]) <= 2 and page["count"] == 5
        seen += [s["email"] for s in page["subscribers"]]
        token = page["nextToken"]
        if not token:
            break

    assert seen == [f"s{n}@example.com" for n in reversed(range(5))]


def test_a_forged_or_another_tenants_page_token_is_400(stage, client):
    active(ADA), active(BOB)
    for n in range(3):
        call(client, "POST", "/me/subscribers", BOB, {"email": f"b{n}@example.com"})
    bobs = call(client, "GET", "/me/subscribers?limit=1", BOB)[1]["nextToken"]

    for token in ("not-a-token", "eyJmb28iOiAiYmFyIn0", bobs):
        status, body = call(client, "GET", f"/me/subscribers?nextToken={token}")
        assert status == 400 and body["Message"] == "nextToken is not one this API returned"


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "sort=name"])
def test_a_bad_listing_query_is_400(stage, client, query):
    active(ADA)

    assert call(client, "GET", f"/me/subscribers?{query}")[0] == 400


# --- remove -----------------------------------------------------------------------------------
def test_removing_is_204_then_404_and_counts_exactly(stage, client):
    active(ADA)
    call(client, "POST", "/me/subscribers", body={"email": "Grace@example.com"})
    call(client, "POST", "/me/subscribers", body={"email": "linus@example.com"})

    first = call(client, "DELETE", "/me/subscribers/" + urllib.parse.quote("GRACE@example.com"))
    again = call(client, "DELETE", "/me/subscribers/grace@example.com")

    assert first == (204, None)
    assert again[0] == 404 and "no subscriber" in again[1]["Message"]
    assert count() == 1 and [i["sk"]["S"] for i in items()] == ["linus@example.com"]


# --- one tenant's list is no other's ------------------------------------------------------------
def test_another_tenants_token_sees_and_changes_none_of_them(stage, client):
    active(ADA), active(BOB)
    call(client, "POST", "/me/subscribers", ADA, {"email": "grace@example.com"})

    listed = call(client, "GET", "/me/subscribers", BOB)
    removed = call(client, "DELETE", "/me/subscribers/grace@example.com", BOB)

    assert listed == (200, {"subscribers": [], "count": 0, "nextToken": None})
    assert removed[0] == 404
    assert count(ADA) == 1 and count(BOB) == 0


# --- import -----------------------------------------------------------------------------------
def test_an_import_answers_each_row_and_a_retry_adds_nothing_twice(stage, client):
    active(ADA)
    call(client, "POST", "/me/subscribers", body={"email": "old@example.com"})
    rows = [{"email": "new@example.com", "name": "New"}, {"email": "OLD@example.com"},
            {"email": "broken"}, {"name": "no email"}, "a string", {"email": "NEW@example.com"}]

    status, first = call(client, "POST", "/me/subscribers/import", body=rows)
    _, again = call(client, "POST", "/me/subscribers/import", body=rows)

    assert status == 200
    assert [(r["row"], r["result"]) for r in first["rows"]] == [
        (1, "added"), (2, "existing"), (3, "invalid"), (4, "invalid"), (5, "invalid"), (6, "existing")]
    assert "exactly one @" in first["rows"][2]["reason"]
    assert "email is required" in first["rows"][3]["reason"]
    assert (first["added"], first["existing"], first["invalid"], first["count"]) == (1, 2, 3, 2)
    assert [r["result"] for r in again["rows"]] == [
        "existing", "existing", "invalid", "invalid", "invalid", "existing"]
    assert again["count"] == 2 == count() == len(items())


def test_a_csv_import_with_its_header_is_read_by_column(stage, client):
    active(ADA)
    csv = "name,email\r\nAda,ada@example.com\r\n\"Lovelace, Ada\",lovelace@example.com\r\n,x@y\r\n"

    status, answer = call(client, "POST", "/me/subscribers/import", body=csv, content_type="text/csv")

    assert status == 200
    assert [r["result"] for r in answer["rows"]] == ["added", "added", "invalid"]
    names = {s["email"]: s.get("name") for s in call(client, "GET", "/me/subscribers")[1]["subscribers"]}
    assert names == {"ada@example.com": "Ada", "lovelace@example.com": "Lovelace, Ada"}


@pytest.mark.parametrize("body, content_type, status, sentence", [
    ("email\n" + "".join(f"s{n}@example.com\n" for n in range(1001)), "text/csv", 413, "at most 1000 rows"),
    (json.dumps([{"email": f"s{n}@example.com"} for n in range(1001)]), "application/json", 413,
     "at most 1000 rows"),
    ("mail,name\nada@example.com,Ada\n", "text/csv", 400, "header row"),
    ('{"email": "ada@example.com"}', "application/json", 400, "is an array"),
    ("[not json", "application/json", 400, "not valid JSON"),
])
def test_an_import_beyond_the_limits_or_unreadable_is_refused_before_anything_is_added(
    stage, client, body, content_type, status, sentence
):
    active(ADA)

    code, answer = call(client, "POST", "/me/subscribers/import", body=body, content_type=content_type)

    assert code == status and sentence in answer["Message"]
    assert count() == 0 and items() == []


# --- concurrency ---------------------------------------------------------------------------------
def test_fifty_concurrent_adds_of_the_same_ten_emails_count_ten(stage):
    active(ADA)
    with deps.within("api_handler"):  # the routes' own store, and its role
        store = deps.subscriber_store()
    emails = [f"Same{n}@example.com" for n in range(10)]
    results, errors = [], []

    def add(n):
        try:
            with deps.within("api_handler"):
                results.append(store.add_all(ADA["tenantId"], [NewSubscriber(emails[n % 10])]))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert count() == 10 == len(items())
    assert sum(added for result in results for added in result.values()) == 10


def test_routes_use_the_tenant_id_of_the_token_only(stage):
    from chalicelib.my_subscribers import caller_tenant

    assert caller_tenant({"authorizer": {"claims": {"sub": ADA["tenantId"]}}}) == ADA["tenantId"]
    with pytest.raises(Exception, match="no tenant for this sign-in"):
        caller_tenant({"authorizer": {"claims": {"sub": "../other"}}})
    with Client(stage.app, stage_name=STAGE) as client:
        response = client.http.get("/me/subscribers")  # no token: nobody
    assert response.status_code == 404
