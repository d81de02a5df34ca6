"""DynamoDB's conditional writes, atomic as in AWS, on moto (scripts/local/patching.py).

AWS checks a write's condition and applies the write as one step: of two
conditional writes racing on an item, exactly one can win. moto's backend
reads the item, evaluates the condition and writes without a lock, so two
threads of the local stack (two admins, two retries) can both pass. Every
write goes through one lock here. So does every request as a whole: moto
turns a read's item into JSON after its backend has handed the item back,
while a write in another thread may be changing that item in place
("dictionary changed size during iteration"); DynamoDB never shows a
half-written item.

moto also keeps a copy of a table to roll a failed transaction back, and
makes it once for every item of the transaction: 100 copies of the whole
table for each 100-item transaction, which makes importing 10,000
subscribers take minutes and gigabytes. One copy a table a transaction
keeps the same rollback.
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
    from moto.dynamodb.responses import DynamoHandler

    for name in WRITES:
        replace(DynamoDBBackend, name,
                _copying_once if name == "transact_write_items" else _serialized)
    # the lock is re-entrant: a write's own lock inside its request's is free
    replace(DynamoHandler, "call_action", _serialized)


def _serialized(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return write(*args, **kwargs)

    return one_at_a_time


class _CopyOnce:
    """moto's ``copy`` module for one transaction: the same object copied again
    is the same copy (its tables are not changed until the copies are made)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._copies: dict[int, Any] = {}

    def deepcopy(self, value: Any, *args: Any) -> Any:
        if id(value) not in self._copies:
            self._copies[id(value)] = (value, self._real.deepcopy(value, *args))
        return self._copies[id(value)][1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _copying_once(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def transact(*args: Any, **kwargs: Any) -> Any:
        from moto.dynamodb import models

        with _lock:  # the only writer: moto's module is ours for the call
            real = models.copy
            models.copy = _CopyOnce(real)  # type: ignore[assignment]
            try:
                return write(*args, **kwargs)
            finally:
                models.copy = real

    return transact
