"""A short lease lock in DynamoDB, for read-modify-write of shared things.

SES's UpdateContactList replaces a list's whole topic array, so two
onboardings adding their topics at once would lose one. They take this lock
around the read-modify-write. A holder that dies releases it by expiry.
"""
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from chalicelib.errors import ContactListBusy, aws_call, aws_error_code
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = get_logger(__name__)


class LeaseLock:
    def __init__(
        self,
        dynamodb_client: "DynamoDBClient",
        table_name: str,
        name: str,
        lease_seconds: float = 120,
        wait_seconds: float = 10,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = dynamodb_client
        self._table = table_name
        self._key = {"pk": {"S": f"lock#{name}"}, "sk": {"S": "lock"}}
        self._name = name
        self._lease = lease_seconds
        self._wait = wait_seconds
        self._clock = clock
        self._sleep = sleep

    @contextmanager
    def held(self) -> Iterator[None]:
        owner = str(uuid.uuid4())
        deadline = self._clock() + self._wait
        delay = 0.05
        while not self._try_acquire(owner):
            if self._clock() >= deadline:
                raise ContactListBusy(
                    f"{self._name} stayed locked for {self._wait:.0f}s; will retry"
                )
            self._sleep(delay)
            delay = min(delay * 2, 0.5)
        try:
            yield
        finally:
            self._release(owner)

    def _try_acquire(self, owner: str) -> bool:
        now = self._clock()
        try:
            with aws_call("DynamoDB"):
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        **self._key,
                        "owner": {"S": owner},
                        "expiresAt": {"N": f"{now + self._lease:.3f}"},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now",
                    ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
                )
            return True
        except Exception as error:
            if aws_error_code(error) == "ConditionalCheckFailedException":
                return False
            raise

    def _release(self, owner: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=self._key,
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except Exception as error:  # expired and taken over, or unreachable
            logger.warning("could not release lock %s: %s", self._name, aws_error_code(error) or error)
