"""DynamoDB's conditional writes, atomic as in AWS, on moto (scripts/local/patching.py).

AWS checks a write's condition and applies the write as one step: of two
conditional writes racing on an item, exactly one can win. moto's backend
reads the item, evaluates the condition and writes without a lock, so two
threads of the local stack (two admins, two retries) can both pass. Every
write goes through one lock here; reads need none.
"""
import functools
import threading
from collections.abc import Callable
from typing import Any

from scripts.local.patching import replace

_lock = threading.RLock()
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def make_conditional_writes_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITES:
        replace(DynamoDBBackend, name, _serialized)


def _serialized(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return write(*args, **kwargs)

    return one_at_a_time
