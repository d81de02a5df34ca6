"""The reconciler's findings as CloudWatch embedded metric format (EMF) lines.

Each run writes one line that CloudWatch turns into metrics of the stage's
namespace: the stage's alarms (scripts/deploy/alarms.py) fire above zero.
The line must be what CloudWatch accepts (a ``_aws`` object naming each
metric, its value at the top level) and carry the counts the run found.
"""
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.reconciler import (
    METRICS,
    OUTCOME_EVENTS_DUE,
    RELEASE_FAILURES,
    STUCK_TENANTS,
    SWEEP_ERRORS,
    Reconciler,
    emf_line,
    metrics_namespace,
)
from chalicelib.tenants import (
    ONBOARDING,
    OUTCOME_DUE_INDEX,
    RELEASE_DUE,
    RELEASE_DUE_INDEX,
    STATUS_INDEX,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OLD = "2026-12-03T10:00:00.000Z"  # well past any grace period


class Tenants:
    """The repository as the sweep reads it: ids by index and value, records by id."""

    def __init__(self, by_index: dict[tuple[str, str], list[str]],
                 records: dict[str, dict[str, Any]]) -> None:
        self._by_index, self._records = by_index, records

    def ids_in_index(self, index: str, attribute: str, value: str) -> list[str]:
        return self._by_index.get((index, value), [])

    def get(self, tenant_id: str) -> dict[str, Any] | None:
        record = self._records.get(tenant_id)
        if record is None:
            raise RuntimeError("DynamoDB is down")
        return record


class Runs:
    def __init__(self, status: str | None) -> None:
        self._status = status

    def execution_status(self, tenant_id: str, attempt: int = 1) -> str | None:
        return self._status


class Outcomes:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def fail(self, tenant: Any, reason: str) -> None:
        self.failed.append(tenant.tenant_id)

    def publish_due(self, record: dict[str, Any]) -> bool:
        return True


def record(tenant_id: str, **fields: Any) -> dict[str, Any]:
    return {"pk": tenant_id, "email": f"{tenant_id}@example.com", "name": "Ada Ltd",
            "updatedAt": OLD, **fields}


def sweep(tenants: Tenants, run_status: str | None = "RUNNING") -> tuple[dict[str, Any], Outcomes]:
    lines: list[str] = []
    reconciler = Reconciler(tenants, Runs(run_status), publisher=None, offboarding=Runs(None),
                            reminder_seconds=3600, grace_seconds=600, clock=lambda: NOW,
                            metrics_namespace=metrics_namespace("dev"),
                            write_metrics=lines.append)
    outcomes = reconciler._outcomes = Outcomes()  # what a finding sets off is tested elsewhere
    reconciler.run()
    [line] = lines
    return json.loads(line), outcomes


def values(emf: dict[str, Any]) -> dict[str, int]:
    return {name: emf[name] for name in METRICS}


def test_a_line_is_what_cloudwatch_takes_as_metrics_of_the_namespace():
    line = emf_line("tenant-onboarding/dev", {"StuckTenants": 2, "ReleaseFailures": 0}, NOW)

    emf = json.loads(line)
    assert "\n" not in line
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert emf["_aws"]["Timestamp"] == int(NOW.timestamp() * 1000)
    assert directive["Namespace"] == "tenant-onboarding/dev"
    assert directive["Dimensions"] == [[]]
    assert directive["Metrics"] == [{"Name": "StuckTenants", "Unit": "Count"},
                                    {"Name": "ReleaseFailures", "Unit": "Count"}]
    assert (emf["StuckTenants"], emf["ReleaseFailures"]) == (2, 0)


def test_a_run_that_finds_nothing_still_reports_every_metric_as_zero():
    emf, _ = sweep(Tenants({}, {}))

    assert values(emf) == dict.fromkeys(METRICS, 0)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "tenant-onboarding/dev"


@pytest.mark.parametrize("ended", ["ABORTED", "FAILED", None])
def test_tenants_stuck_in_onboarding_are_counted(ended):
    tenants = Tenants({(STATUS_INDEX, ONBOARDING): ["t1", "t2"]},
                      {"t1": record("t1", status=ONBOARDING), "t2": record("t2", status=ONBOARDING)})

    emf, outcomes = sweep(tenants, run_status=ended)

    assert outcomes.failed == ["t1", "t2"]
    assert values(emf) == {**dict.fromkeys(METRICS, 0), STUCK_TENANTS: 2}


def test_a_running_onboarding_is_no_finding():
    tenants = Tenants({(STATUS_INDEX, ONBOARDING): ["t1"]}, {"t1": record("t1", status=ONBOARDING)})

    emf, _ = sweep(tenants, run_status="RUNNING")

    assert values(emf) == dict.fromkeys(METRICS, 0)


def test_outcome_events_due_are_counted_but_not_one_already_sent():
    tenants = Tenants({(OUTCOME_DUE_INDEX, "rejected"): ["t1", "t2"]}, {
        "t1": record("t1", outcomeDue="rejected"),
        "t2": record("t2", outcomeDue="rejected", outcomeNotifiedAt=OLD),  # a stale index entry
    })

    emf, _ = sweep(tenants)

    assert emf[OUTCOME_EVENTS_DUE] == 1


def test_release_failures_are_counted():
    failure = {"what": ["stripeCustomer"], "reason": "AccessDenied"}
    tenants = Tenants({(RELEASE_DUE_INDEX, RELEASE_DUE): ["t1"]},
                      {"t1": record("t1", status="rejected", releaseFailure=failure)})

    emf, _ = sweep(tenants)

    assert values(emf) == {**dict.fromkeys(METRICS, 0), RELEASE_FAILURES: 1}


def test_a_tenant_the_sweep_cannot_check_is_counted_as_an_error():
    tenants = Tenants({(RELEASE_DUE_INDEX, RELEASE_DUE): ["unreadable"]}, {})

    emf, _ = sweep(tenants)

    assert emf[SWEEP_ERRORS] == 1


class TenantsWithAFailingListing(Tenants):
    def ids_in_index(self, index: str, attribute: str, value: str) -> list[str]:
        if (index, value) == (OUTCOME_DUE_INDEX, "rejected"):
            raise RuntimeError("DynamoDB is down")
        return super().ids_in_index(index, attribute, value)


def test_a_listing_that_fails_is_counted_the_other_listings_swept_and_the_run_fails():
    failure = {"what": ["stripeCustomer"], "reason": "AccessDenied"}
    tenants = TenantsWithAFailingListing(
        {(STATUS_INDEX, ONBOARDING): ["t1"], (RELEASE_DUE_INDEX, RELEASE_DUE): ["t2"]},
        {"t1": record("t1", status=ONBOARDING),
         "t2": record("t2", status="rejected", releaseFailure=failure)})
    lines: list[str] = []
    reconciler = Reconciler(tenants, Runs("FAILED"), publisher=None, offboarding=Runs(None),
                            reminder_seconds=3600, grace_seconds=600, clock=lambda: NOW,
                            write_metrics=lines.append)
    reconciler._outcomes = Outcomes()

    with pytest.raises(RuntimeError, match="DynamoDB is down"):
        reconciler.run()

    # found before the failed listing (t1) and after it (t2), and the failure itself
    [line] = lines
    assert values(json.loads(line)) == {**dict.fromkeys(METRICS, 0), STUCK_TENANTS: 1,
                                        RELEASE_FAILURES: 1, SWEEP_ERRORS: 1}
