"""SES contact lists under AWS's real quotas (enforced on moto for these
tests): one list per account and Region, 20 topics per list."""
import threading

from tests.support.stage import Stage, tenant


def test_list_per_tenant_onboards_the_first_tenant_only(monkeypatch):
    with Stage(monkeypatch, enforce_ses_quotas=True) as stage:
        first, second = tenant(30), tenant(31)
        one = stage.start(first)
        stage.wait_for_token(one)
        two = stage.start(second)

        assert stage.wait_for_end(two)["status"] == "FAILED"
        assert stage.record(first["tenantId"])["list"] == f"tenant-{first['tenantId']}"
        reason = stage.record(second["tenantId"])["failureReason"]
        assert "one contact list per account and Region" in reason
        assert "topic-per-tenant" in reason


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
