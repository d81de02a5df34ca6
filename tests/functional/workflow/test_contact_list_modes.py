"""The contact-list modes under AWS's real quotas (enforced on moto for these
tests): one SES list per account and Region, 20 topics per list, 10,000 SES
tenants; and a stage that changes mode."""
import json
import threading

import pytest
from chalice.test import Client

from chalicelib import dependencies as deps
from chalicelib.subscribers import subscribers_of
from tests.support import unsigned_id_token
from tests.support.stage import STAGE, Stage, finalize_body, tenant


def test_subscriber_store_onboards_more_tenants_than_ses_lists_or_topics_allow(monkeypatch):
    # 25: more than one list, more than 20 topics
    with Stage(monkeypatch, enforce_ses_quotas=True) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        tenants = [tenant(200 + n) for n in range(25)]
        executions = [stage.start(t) for t in tenants]
        for execution in executions:
            token = stage.wait_for_token(execution)
            response = client.http.post("/tenant/finalize", headers={"Content-Type": "application/json"},
                                        body=finalize_body(token, "approved"))
            assert response.status_code == 200, response.body
        for execution in executions:
            assert stage.wait_for_end(execution)["status"] == "SUCCEEDED"

        records = [stage.record(t["tenantId"]) for t in tenants]
        assert [r["status"] for r in records] == ["active"] * 25
        assert {r["sesTenant"] for r in records} == {
            t["TenantName"] for t in stage.sesv2.list_tenants()["Tenants"]}
        assert len({r["sesTenant"] for r in records}) == 25
        assert stage.sesv2.list_contact_lists()["ContactLists"] == []


def subscriber_items(stage, tenant_id):
    return stage.ddb.query(
        TableName=stage.table_name, KeyConditionExpression="pk = :p", ConsistentRead=True,
        ExpressionAttributeValues={":p": {"S": subscribers_of(tenant_id)}})["Items"]


def post(client, path, body, **headers):
    return client.http.post(path, body=json.dumps(body),
                            headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize(("old_mode", "new_mode"), [
    ("list-per-tenant", "subscriber-store"),
    ("subscriber-store", "list-per-tenant"),
])
def test_a_stage_that_changes_mode_gives_each_tenant_back_as_its_record_says(
        monkeypatch, old_mode, new_mode):
    with Stage(monkeypatch, contact_list_mode=old_mode) as stage, \
            Client(stage.app, stage_name=STAGE) as client:
        old = tenant(230)
        execution = stage.start(old)
        post(client, "/tenant/finalize",
             json.loads(finalize_body(stage.wait_for_token(execution), "approved")))
        stage.wait_for_end(execution)
        assert stage.record(old["tenantId"])["listMode"] == old_mode
        if old_mode == "subscriber-store":  # and subscribers, which go with it
            answer = post(client, "/me/subscribers/import",
                          [{"email": f"s{k}@example.com"} for k in range(3)],
                          Authorization=unsigned_id_token(old["tenantId"]))
            assert json.loads(answer.body)["added"] == 3
        # the stage changes mode; the old tenant keeps what it was given
        monkeypatch.setenv("CONTACT_LIST_MODE", new_mode)
        deps.reset()
        new = tenant(231)
        execution = stage.start(new)
        stage.wait_for_token(execution)
        assert stage.record(new["tenantId"])["listMode"] == new_mode

        response = post(client, f"/tenants/{old['tenantId']}/offboarding", {"reason": "moved"})

        assert response.status_code == 202
        done = stage.wait_for_status(old["tenantId"], "offboarded")
        released = done["released"]["contactList"]
        lists = [c["ContactListName"] for c in stage.sesv2.list_contact_lists()["ContactLists"]]
        ses_tenants = [t["TenantName"] for t in stage.sesv2.list_tenants()["Tenants"]]
        if old_mode == "list-per-tenant":
            assert released == {**released, "list": f"tenant-{old['tenantId']}",
                                "listMode": "list-per-tenant", "existed": True}
            assert (lists, ses_tenants) == ([], [f"tenant-{new['tenantId']}"])
        else:
            assert released == {**released, "sesTenant": f"tenant-{old['tenantId']}",
                                "listMode": "subscriber-store", "existed": True}
            assert (lists, ses_tenants) == ([f"tenant-{new['tenantId']}"], [])
            assert subscriber_items(stage, old["tenantId"]) == [] and done["subscribers"] == 0


def test_list_per_tenant_onboards_the_first_tenant_only(monkeypatch):
    with Stage(monkeypatch, enforce_ses_quotas=True, contact_list_mode="list-per-tenant") as stage:
        first, second = tenant(30), tenant(31)
        one = stage.start(first)
        stage.wait_for_token(one)
        two = stage.start(second)

        assert stage.wait_for_end(two)["status"] == "FAILED"
        assert stage.record(first["tenantId"])["list"] == f"tenant-{first['tenantId']}"
        reason = stage.record(second["tenantId"])["failureReason"]
        assert "one contact list per account and Region" in reason
        assert "subscriber-store" in reason


def test_topic_per_tenant_adds_the_tenants_topic_to_the_shared_list(monkeypatch):
    with Stage(monkeypatch, contact_list_mode="topic-per-tenant", enforce_ses_quotas=True) as stage:
        t = tenant(32)
        execution = stage.start(t)
        stage.wait_for_token(execution)

        record = stage.record(t["tenantId"])
        assert record["list"] == stage.shared_contact_list
        assert record["topic"] == f"tenant-{t['tenantId']}"
        topics = stage.sesv2.get_contact_list(ContactListName=record["list"])["Topics"]
        assert [x["TopicName"] for x in topics] == [record["topic"]]
        assert topics[0]["DisplayName"] == t["name"]


def test_twenty_concurrent_onboardings_keep_all_twenty_topics(monkeypatch):
    with Stage(monkeypatch, contact_list_mode="topic-per-tenant", enforce_ses_quotas=True) as stage:
        tenants = [tenant(100 + n) for n in range(20)]
        executions = [None] * 20

        def start(n):
            executions[n] = stage.start(tenants[n])

        threads = [threading.Thread(target=start, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for execution in executions:
            stage.wait_for_token(execution, seconds=60)

        topics = stage.sesv2.get_contact_list(ContactListName=stage.shared_contact_list)[
            "Topics"
        ]
        assert sorted(x["TopicName"] for x in topics) == sorted(
            f"tenant-{t['tenantId']}" for t in tenants
        )
        assert all(stage.record(t["tenantId"])["status"] == "onboarding" for t in tenants)

        # the 21st tenant finds the list full
        extra = tenant(200)
        execution = stage.start(extra)
        assert stage.wait_for_end(execution, seconds=60)["status"] == "FAILED"
        assert "already has 20 topics" in stage.record(extra["tenantId"])["failureReason"]
