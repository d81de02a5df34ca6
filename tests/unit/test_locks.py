import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.errors import AwsServiceUnavailable, ContactListBusy
from chalicelib.locks import LeaseLock
from tests.unit.conftest import REGION, TABLE_NAME

NAME = "shared-list"
KEY = {"pk": {"S": f"lock#{NAME}"}, "sk": {"S": "lock"}}


class FakeTime:
    """A clock that only moves when the lock sleeps."""

    def __init__(self, now=1_000_000.0):
        self.now = now
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def lock_item(dynamodb):
    return dynamodb.get_item(TableName=TABLE_NAME, Key=KEY, ConsistentRead=True).get("Item")


def plant_lock(dynamodb, owner, expires_at):
    dynamodb.put_item(
        TableName=TABLE_NAME,
        Item={**KEY, "owner": {"S": owner}, "expiresAt": {"N": f"{expires_at:.3f}"}},
    )


def make_lock(dynamodb, time, lease=15, wait=10):
    return LeaseLock(
        dynamodb, TABLE_NAME, NAME, lease_seconds=lease, wait_seconds=wait,
        clock=time.clock, sleep=time.sleep,
    )


def test_given_a_free_lock_when_held_then_the_item_names_an_owner_and_lease_end(dynamodb):
    time = FakeTime()

    with make_lock(dynamodb, time, lease=15).held():
        item = lock_item(dynamodb)

    assert item["owner"]["S"]
    assert float(item["expiresAt"]["N"]) == pytest.approx(time.now + 15)
    assert time.sleeps == []


def test_given_a_held_lock_when_the_block_ends_then_the_lock_is_released(dynamodb):
    with make_lock(dynamodb, FakeTime()).held():
        pass

    assert lock_item(dynamodb) is None


def test_given_a_held_lock_when_the_block_raises_then_the_lock_is_released(dynamodb):
    with pytest.raises(RuntimeError):
        with make_lock(dynamodb, FakeTime()).held():
            raise RuntimeError("boom")

    assert lock_item(dynamodb) is None


def test_given_another_live_holder_when_held_then_busy_after_the_wait_and_lock_untouched(dynamodb):
    time = FakeTime()
    plant_lock(dynamodb, "someone-else", time.now + 60)

    with pytest.raises(ContactListBusy):
        with make_lock(dynamodb, time, wait=10).held():
            pytest.fail("entered a lock someone else holds")

    assert time.now - 1_000_000.0 >= 10
    assert lock_item(dynamodb)["owner"] == {"S": "someone-else"}


def test_given_another_live_holder_when_waiting_then_sleeps_back_off_up_to_half_a_second(dynamodb):
    time = FakeTime()
    plant_lock(dynamodb, "someone-else", time.now + 60)

    with pytest.raises(ContactListBusy):
        with make_lock(dynamodb, time, wait=5).held():
            pass

    assert time.sleeps[:4] == [0.05, 0.1, 0.2, 0.4]
    assert max(time.sleeps) == 0.5


def test_given_an_expired_holder_when_held_then_the_lock_is_taken_over(dynamodb):
    time = FakeTime()
    plant_lock(dynamodb, "crashed-holder", time.now - 1)

    with make_lock(dynamodb, time).held():
        owner = lock_item(dynamodb)["owner"]["S"]

    assert owner != "crashed-holder"
    assert time.sleeps == []


def test_given_the_holder_releases_while_waiting_when_held_then_it_is_acquired(dynamodb):
    time = FakeTime()
    plant_lock(dynamodb, "someone-else", time.now + 60)

    def sleep_then_release(seconds):
        time.sleeps.append(seconds)
        dynamodb.delete_item(TableName=TABLE_NAME, Key=KEY)

    lock = LeaseLock(dynamodb, TABLE_NAME, NAME, clock=time.clock, sleep=sleep_then_release)
    with lock.held():
        entered = True

    assert entered
    assert len(time.sleeps) == 1


def test_given_the_lease_was_taken_over_when_the_block_ends_then_the_new_owner_keeps_it(
    dynamodb,
):
    time = FakeTime()

    with make_lock(dynamodb, time).held():
        plant_lock(dynamodb, "new-owner", time.now + 60)  # our lease expired meanwhile

    assert lock_item(dynamodb)["owner"] == {"S": "new-owner"}


def test_given_dynamodb_throttles_when_acquiring_then_aws_service_unavailable():
    client = boto3.client("dynamodb", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "put_item", service_error_code="ProvisionedThroughputExceededException", http_status_code=400
        )

        with pytest.raises(AwsServiceUnavailable):
            with make_lock(client, FakeTime()).held():
                pytest.fail("entered without the lock")
