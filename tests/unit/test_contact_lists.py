from contextlib import contextmanager

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.contact_lists import (
    MAX_TOPICS_PER_LIST,
    ContactListPlace,
    ContactLists,
    SharedListTopics,
    contact_list_name,
)
from chalicelib.errors import AwsServiceUnavailable, ContactListBusy, ContactListQuotaReached
from chalicelib.locks import LeaseLock
from scripts.local.ses import reproduce_ses_contact_lists
from tests.unit.conftest import REGION, TABLE_NAME, TENANT_ID, FailingClient

SHARED = "tenant-onboarding-test-subscribers"
TOPIC = f"tenant-{TENANT_ID}"


@pytest.fixture
def sesv2(aws):
    return boto3.client("sesv2", region_name=REGION)


def topic(name, display="Someone"):
    return {
        "TopicName": name,
        "DisplayName": display,
        "Description": f"Newsletter of {name}",
        "DefaultSubscriptionStatus": "OPT_OUT",
    }


class FreeLock:
    """A lock that is always free; records whether it is held."""

    def __init__(self):
        self.is_held = False
        self.times_taken = 0

    @contextmanager
    def held(self):
        self.is_held = True
        self.times_taken += 1
        try:
            yield
        finally:
            self.is_held = False


class BusyLock:
    @contextmanager
    def held(self):
        raise ContactListBusy("someone else holds it")
        yield  # pragma: no cover


# --- ContactListPlace ---------------------------------------------------------
def test_given_a_place_without_topic_when_serialised_then_the_list_and_its_mode():
    assert ContactListPlace(list="tenant-a").to_dict() == {
        "list": "tenant-a", "listMode": "list-per-tenant"}


def test_given_a_place_with_topic_when_serialised_then_list_and_topic():
    assert ContactListPlace(list="shared", topic="tenant-a", mode="topic-per-tenant").to_dict() == {
        "list": "shared",
        "topic": "tenant-a",
        "listMode": "topic-per-tenant",
    }


@pytest.mark.parametrize("record, place", [
    ({"list": "tenant-a"}, ContactListPlace(list="tenant-a", mode="list-per-tenant")),
    ({"list": "shared", "topic": "tenant-a"},
     ContactListPlace(list="shared", topic="tenant-a", mode="topic-per-tenant")),
    ({"list": "subscribers-a", "sesTenant": "tenant-a", "listMode": "subscriber-store"},
     ContactListPlace(list="subscribers-a", ses_tenant="tenant-a", mode="subscriber-store")),
    ({"status": "rejected"}, None),
])
def test_given_a_record_then_its_place_is_read_with_the_mode_it_was_made_in(record, place):
    # records from before listMode was kept are list- or topic-per-tenant
    assert ContactListPlace.of_record(record) == place


# --- list-per-tenant: ContactLists --------------------------------------------
def test_given_a_tenant_id_when_named_then_the_list_is_tenant_dash_id():
    assert contact_list_name("abc") == "tenant-abc"


def test_given_no_list_when_ensured_then_ses_holds_tenant_dash_id(sesv2):
    place = ContactLists(sesv2).ensure_for_tenant(TENANT_ID, "Ada Ltd")

    assert place == ContactListPlace(list=f"tenant-{TENANT_ID}", topic=None)
    listed = [c["ContactListName"] for c in sesv2.list_contact_lists()["ContactLists"]]
    assert listed == [f"tenant-{TENANT_ID}"]


def test_given_a_list_when_ensured_again_then_same_place_and_still_one_list(sesv2):
    lists = ContactLists(sesv2)
    first = lists.ensure_for_tenant(TENANT_ID, "Ada Ltd")

    second = lists.ensure_for_tenant(TENANT_ID, "Ada Ltd")

    assert second == first
    assert len(sesv2.list_contact_lists()["ContactLists"]) == 1


def test_given_ses_answers_already_exists_when_ensured_then_the_same_place_is_returned():
    # moto accepts a duplicate silently; real SES answers AlreadyExistsException.
    client = boto3.client("sesv2", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "create_contact_list", service_error_code="AlreadyExistsException", http_status_code=400
        )

        place = ContactLists(client).ensure_for_tenant(TENANT_ID, "Ada Ltd")

        stubber.assert_no_pending_responses()
    assert place == ContactListPlace(list=f"tenant-{TENANT_ID}")


def test_given_the_account_list_quota_when_ensured_then_contact_list_quota_reached():
    with pytest.raises(ContactListQuotaReached, match="subscriber-store"):
        ContactLists(FailingClient("LimitExceededException")).ensure_for_tenant(TENANT_ID, "Ada")


def test_given_ses_answers_another_error_when_ensured_then_it_propagates():
    with pytest.raises(ClientError) as raised:
        ContactLists(FailingClient("BadRequestException")).ensure_for_tenant(TENANT_ID, "Ada")

    assert raised.value.response["Error"]["Code"] == "BadRequestException"


def test_given_ses_throttles_when_ensured_then_aws_service_unavailable():
    with pytest.raises(AwsServiceUnavailable):
        ContactLists(FailingClient("TooManyRequestsException")).ensure_for_tenant(TENANT_ID, "Ada")


# --- topic-per-tenant: SharedListTopics ---------------------------------------
@pytest.fixture
def shared_list(sesv2):
    sesv2.create_contact_list(ContactListName=SHARED, Description="Subscribers of every tenant")
    return sesv2


def topics_of(sesv2):
    return sesv2.get_contact_list(ContactListName=SHARED)["Topics"]


def test_given_a_shared_list_when_ensured_then_the_tenant_gets_its_topic(shared_list):
    place = SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada Ltd")

    assert place == ContactListPlace(list=SHARED, topic=TOPIC, mode="topic-per-tenant")
    assert topics_of(shared_list) == [
        {
            "TopicName": TOPIC,
            "DisplayName": "Ada Ltd",
            "Description": f"Newsletter of tenant {TENANT_ID}",
            "DefaultSubscriptionStatus": "OPT_OUT",
        }
    ]


def test_given_other_tenants_topics_when_ensured_then_they_are_kept(shared_list):
    shared_list.update_contact_list(
        ContactListName=SHARED, Topics=[topic("tenant-a"), topic("tenant-b")]
    )

    SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada Ltd")

    names = [t["TopicName"] for t in topics_of(shared_list)]
    assert names == ["tenant-a", "tenant-b", TOPIC]
    assert topics_of(shared_list)[0] == topic("tenant-a")


def test_given_a_list_description_when_a_topic_is_added_then_the_description_is_kept(shared_list):
    SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada Ltd")

    assert shared_list.get_contact_list(ContactListName=SHARED)["Description"] == (
        "Subscribers of every tenant"
    )


def test_given_the_topic_exists_when_ensured_again_then_same_place_and_one_topic(shared_list):
    topics = SharedListTopics(shared_list, SHARED, FreeLock())
    first = topics.ensure_for_tenant(TENANT_ID, "Ada Ltd")

    second = topics.ensure_for_tenant(TENANT_ID, "Ada Ltd")

    assert second == first
    assert [t["TopicName"] for t in topics_of(shared_list)] == [TOPIC]


def test_given_a_long_tenant_name_when_ensured_then_display_name_is_cut_to_128(shared_list):
    SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "n" * 300)

    assert topics_of(shared_list)[0]["DisplayName"] == "n" * 128


def test_given_an_empty_tenant_name_when_ensured_then_display_name_is_the_topic(shared_list):
    SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "")

    assert topics_of(shared_list)[0]["DisplayName"] == TOPIC


def test_given_a_full_list_when_ensured_then_quota_reached_and_list_unchanged(shared_list):
    full = [topic(f"tenant-{i}") for i in range(MAX_TOPICS_PER_LIST)]
    shared_list.update_contact_list(ContactListName=SHARED, Topics=full)

    with pytest.raises(ContactListQuotaReached):
        SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada")
    assert len(topics_of(shared_list)) == MAX_TOPICS_PER_LIST


def test_given_a_full_list_with_the_tenants_topic_when_ensured_then_the_place_is_returned(
    shared_list,
):
    full = [topic(f"tenant-{i}") for i in range(MAX_TOPICS_PER_LIST - 1)] + [topic(TOPIC)]
    shared_list.update_contact_list(ContactListName=SHARED, Topics=full)

    place = SharedListTopics(shared_list, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada")

    assert place == ContactListPlace(list=SHARED, topic=TOPIC, mode="topic-per-tenant")


class LockCheckingSes:
    """Wraps SES and records, per call, whether the lock was held."""

    def __init__(self, client, lock):
        self._client = client
        self._lock = lock
        self.calls = []

    def __getattr__(self, operation):
        def call(**kwargs):
            self.calls.append((operation, self._lock.is_held))
            return getattr(self._client, operation)(**kwargs)

        return call


def test_given_a_topic_to_add_when_ensured_then_read_and_write_happen_under_the_lock(shared_list):
    lock = FreeLock()
    ses = LockCheckingSes(shared_list, lock)

    SharedListTopics(ses, SHARED, lock).ensure_for_tenant(TENANT_ID, "Ada")

    # read, write, and read back (a lease that ran out could have let another
    # writer replace the array) -- all under the lock
    assert ses.calls == [
        ("get_contact_list", True), ("update_contact_list", True), ("get_contact_list", True),
    ]
    assert lock.times_taken == 1


def test_given_the_lock_is_busy_when_ensured_then_contact_list_busy_and_no_ses_write(shared_list):
    ses = LockCheckingSes(shared_list, FreeLock())

    with pytest.raises(ContactListBusy):
        SharedListTopics(ses, SHARED, BusyLock()).ensure_for_tenant(TENANT_ID, "Ada")
    assert ses.calls == []


def test_given_ses_refuses_more_topics_when_ensured_then_quota_reached():
    client = boto3.client("sesv2", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_contact_list", {"ContactListName": SHARED, "Topics": [topic("tenant-a")]}
        )
        stubber.add_client_error(
            "update_contact_list", service_error_code="LimitExceededException", http_status_code=400
        )

        with pytest.raises(ContactListQuotaReached):
            SharedListTopics(client, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada")


def test_given_no_shared_list_when_ensured_then_the_list_is_made_with_the_topic(sesv2):
    # the stack does not own the shared list (it would overwrite the topics):
    # the first onboarding of the stage makes it
    place = SharedListTopics(sesv2, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada")

    assert place.to_dict() == {"list": SHARED, "topic": TOPIC, "listMode": "topic-per-tenant"}
    assert [t["TopicName"] for t in topics_of(sesv2)] == [TOPIC]


def test_given_the_list_made_meanwhile_when_ensured_then_it_is_used_as_is(sesv2, monkeypatch):
    real_create = sesv2.create_contact_list

    def made_by_someone_else_first(**kwargs):
        real_create(**kwargs)
        real_create(**kwargs)  # the second call is ours: AlreadyExists

    monkeypatch.setattr(sesv2, "create_contact_list", made_by_someone_else_first)
    reproduce_ses_contact_lists(enforce_quotas=False)

    place = SharedListTopics(sesv2, SHARED, FreeLock()).ensure_for_tenant(TENANT_ID, "Ada")

    assert place.topic == TOPIC


def test_given_a_real_lease_lock_when_ensured_then_the_lock_is_released_afterwards(
    shared_list, dynamodb
):
    lock = LeaseLock(dynamodb, TABLE_NAME, SHARED)

    SharedListTopics(shared_list, SHARED, lock).ensure_for_tenant(TENANT_ID, "Ada")

    assert [t["TopicName"] for t in topics_of(shared_list)] == [TOPIC]
    assert dynamodb.scan(TableName=TABLE_NAME)["Items"] == []
