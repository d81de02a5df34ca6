"""Time as the tenant record writes it: ISO-8601 UTC with milliseconds.

Every instant the app stores or compares is a string like
``2026-11-26T13:51:53.123Z``: one width and one zone, so that two of them
compare as text in the order they happened (DynamoDB conditions and sort
keys rely on that).
"""
from datetime import UTC, datetime, timedelta


def utc_now() -> str:
    """Now, e.g. 2026-11-26T13:51:53.123Z."""
    return format_instant(datetime.now(UTC))


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(instant: str) -> datetime:
    """One of our instants (or any ISO-8601 one) as an aware datetime; ValueError otherwise."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def instant_or_none(value: object) -> str | None:
    """An ISO-8601 instant as our UTC form, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return format_instant(parse_instant(value))
    except ValueError:
        return None


def plus_seconds(instant: str, seconds: float) -> str:
    return format_instant(parse_instant(instant) + timedelta(seconds=seconds))


def seconds_between(earlier: str, later: datetime) -> float:
    """How long after ``earlier`` ``later`` is (negative when before)."""
    return (later - parse_instant(earlier)).total_seconds()
