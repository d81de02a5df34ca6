"""Every member of moto the local AWS replaces, in one registry.

Where moto is more permissive than AWS, the local stack and the functional
tests answer as AWS does (aws.py, dynamodb.py, executions.py, ses.py). Those
replacements reach into moto's internals, so they hold for the moto they were
written against and no other: ``check_moto_version`` refuses any other
(``make run`` says so in one line), and each replacement has a canary in
tests/unit/test_moto_canaries.py that runs moto as released (``as_released``)
and fails the day moto behaves like AWS by itself, so the patch can go.
"""
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

# The moto these patches were written for; requirements-dev.txt pins the same.
MOTO_VERSION = "5.2.5"


class MotoVersionError(RuntimeError):
    """Another moto than the patches know; printed as one line."""


def check_moto_version() -> None:
    installed = metadata.version("moto")
    if installed != MOTO_VERSION:
        raise MotoVersionError(
            f"the local AWS patches moto {MOTO_VERSION}, but moto {installed} is installed: "
            "run `make clean` and try again (it installs the pinned requirements), or port "
            "scripts/local/patching.py's patches and their canaries to the new moto"
        )


# (owner id, attribute) -> (owner, attribute, moto's own or MISSING, ours)
_replaced: dict[tuple[int, str], tuple[Any, str, Any, Any]] = {}
MISSING = object()  # what moto has where we add a member it lacks


def replace(owner: Any, attribute: str, build: Callable[[Any], Any]) -> None:
    """Set ``owner.attribute`` to ``build(moto's own)``, once per process."""
    key = (id(owner), attribute)
    if key in _replaced:
        return
    check_moto_version()
    original = owner.__dict__[attribute] if isinstance(owner, type) else getattr(owner, attribute)
    replacement = build(original)
    setattr(owner, attribute, replacement)
    _replaced[key] = (owner, attribute, original, replacement)


def add(owner: Any, attribute: str, value: Any) -> None:
    """Give moto a member it lacks (an operation it does not implement), once."""
    key = (id(owner), attribute)
    if key in _replaced:
        return
    check_moto_version()
    if attribute in vars(owner):
        raise RuntimeError(f"moto now has {_name(owner)}.{attribute}: remove our own")
    setattr(owner, attribute, value)
    _replaced[key] = (owner, attribute, MISSING, value)


def replaced() -> list[str]:
    """Each replaced member, as ``module.Owner.attribute``."""
    return sorted(f"{_name(owner)}.{attribute}" for owner, attribute, _, _ in _replaced.values())


@contextmanager
def as_released() -> Iterator[None]:
    """moto as released, for the length of the block (the canaries; nothing
    else may run meanwhile)."""
    for owner, attribute, original, _ in _replaced.values():
        if original is MISSING:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)
    try:
        yield
    finally:
        for owner, attribute, _, replacement in _replaced.values():
            setattr(owner, attribute, replacement)


def _name(owner: Any) -> str:
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}"
    return str(owner.__name__)  # a module
