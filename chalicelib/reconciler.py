"""Nothing stays stuck: the scheduled sweep behind the onboarding workflow.

Runs every 15 minutes in AWS (app.py, ``@app.schedule``), on a period and on
demand locally. Each run:
- moves a tenant still ``onboarding`` whose execution is no longer running
  (aborted by hand, or its failure path itself ran out of retries, or a retry
  whose execution never started) to ``failed``, with a reason and a
  ``Tenant Onboarding Failed`` event;
- publishes an outcome event that was recorded as due but never went out
  (EventBridge down past every retry of the workflow's last task);
- publishes ``Tenant Onboarding Approval Reminder`` once per wait when less
  than ``reminder_seconds`` remain before its ``decideBy``;
- ends an offboarding whose run ended without finishing it (the tenant goes
  back to its status, with ``Tenant Offboarding Failed``);
- reports, by count and one warning each, tenants whose release of what they
  took failed for good (offboarding them purges it).
Each run ends with one line of CloudWatch's embedded metric format (EMF):
its findings as metrics in the stage's namespace (``METRICS``), which the
stage's alarms watch (scripts/deploy/alarms.py; README, "Operations").
Records younger than ``grace_seconds`` are left to the workflow, which may
be about to do the same, unless the run they wait on has already ended
(``ENDED``): an ended run changes nothing more, so waiting would only keep an
admin from approving or retrying the tenant.
"""
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.clock import seconds_between, utc_now
from chalicelib.events import APPROVAL_REMINDER, OUTCOMES, EventPublisher
from chalicelib.logs import get_logger
from chalicelib.offboarding import Offboardings
from chalicelib.outcomes import Outcomes
from chalicelib.tenants import (
    OFFBOARDING,
    ONBOARDING,
    OUTCOME_DUE_INDEX,
    RELEASE_DUE,
    RELEASE_DUE_INDEX,
    STATUS_INDEX,
    NewTenant,
    TenantRepository,
)
from chalicelib.workflow import (
    OffboardingWorkflow,
    OnboardingWorkflow,
    execution_name,
    offboarding_name,
)

if TYPE_CHECKING:
    from chalicelib.outcome_mail import OutcomeMail

logger = get_logger(__name__)

# A run in one of these statuses has done all it will: whatever it was going to
# write is written. (RUNNING and PENDING_REDRIVE may still write; no status at
# all is a run not started yet, such as a retry between its record and its start.)
ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


# The findings each run reports as metrics (EMF), each alarmed above zero: name -> meaning.
STUCK_TENANTS = "StuckTenants"
OUTCOME_EVENTS_DUE = "OutcomeEventsDue"
RELEASE_FAILURES = "ReleaseFailures"
SWEEP_ERRORS = "SweepErrors"
METRICS: dict[str, str] = {
    STUCK_TENANTS: "tenants found stuck in onboarding or offboarding, whose run ended "
                   "without a final status (failed by the sweep, with an event)",
    OUTCOME_EVENTS_DUE: "outcome events recorded as due but never sent (EventBridge was down "
                        "past every retry, or SES could not take the outcome mail, sent "
                        "first); the sweep publishes them",
    RELEASE_FAILURES: "tenants whose release of what they took failed for good: they may "
                      "still hold a Stripe customer, an SES list or tenant, or a login",
    SWEEP_ERRORS: "tenants the sweep could not check, or listings of tenants it could not "
                  "make: each error logged, with its tenant id or the listing",
}


def metrics_namespace(stage: str) -> str:
    """The CloudWatch namespace of a stage's reconciler metrics."""
    return f"tenant-onboarding/{stage}"


def emf_line(namespace: str, values: dict[str, int], at: datetime) -> str:
    """One log line in CloudWatch's embedded metric format: ``values`` become
    metrics of ``namespace``, without dimensions, at ``at``."""
    return json.dumps({
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
            }],
        },
        **values,
    })


def _print_line(line: str) -> None:
    """Lambda sends each line of stdout to the function's log group as it is."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Sweep:
    """What one run looked at and did, in counts (its log line), and its
    findings (its metrics: every one of ``METRICS``, zero included)."""

    counts: dict[str, int] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRICS, 0))

    def add(self, what: str, finding: str | None = None) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        if finding:
            self.findings[finding] += 1


class Reconciler:
    def __init__(
        self,
        tenants: TenantRepository,
        workflow: OnboardingWorkflow,
        publisher: EventPublisher,
        offboarding: OffboardingWorkflow,
        reminder_seconds: int,
        grace_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics_namespace: str = metrics_namespace("local"),
        write_metrics: Callable[[str], None] = _print_line,
        mail: "OutcomeMail | None" = None,
    ) -> None:
        self._tenants = tenants
        self._workflow = workflow
        self._publisher = publisher
        self._offboarding = offboarding
        self._outcomes = Outcomes(tenants, publisher, mail=mail)  # the mail a due outcome owes
        self._offboardings = Offboardings(tenants, publisher)
        self._reminder = reminder_seconds
        self._grace = grace_seconds
        self._clock = clock
        self._namespace = metrics_namespace
        self._write_metrics = write_metrics

    def run(self) -> dict[str, int]:
        sweep = Sweep()
        now = self._clock()
        sweeps = [(STATUS_INDEX, "status", ONBOARDING, self._check_onboarding)]
        sweeps += [(OUTCOME_DUE_INDEX, "outcomeDue", status, self._publish_due_outcome)
                   for status in OUTCOMES]
        sweeps += [(STATUS_INDEX, "status", OFFBOARDING, self._check_offboarding),
                   (RELEASE_DUE_INDEX, "releaseDue", RELEASE_DUE, self._report_release_failure)]
        failed: Exception | None = None
        for index, attribute, value, check in sweeps:
            try:
                for tenant_id in self._tenants.ids_in_index(index, attribute, value):
                    try:
                        check(tenant_id, now, sweep)
                    except Exception as error:  # one tenant must not stop the sweep
                        logger.exception("could not reconcile: %s", error,
                                         extra={"tenantId": tenant_id})
                        sweep.add("errors", SWEEP_ERRORS)
            except Exception as error:  # a listing failed: the other indexes still get swept
                logger.exception("could not list %s %s: %s", attribute, value, error)
                sweep.add("errors", SWEEP_ERRORS)
                failed = failed or error
        self._write_metrics(emf_line(self._namespace, sweep.findings, now))
        if failed is not None:
            raise failed  # and Lambda reports it (the function's Errors alarm)
        logger.info("reconciled: %s", ", ".join(f"{k} {v}" for k, v in sorted(sweep.counts.items()))
                    or "nothing to do")
        return sweep.counts

    def _actionable(
        self, tenant_id: str, status: str, now: datetime, run_status: Callable[[dict[str, Any]], str | None],
    ) -> tuple[dict[str, Any], str | None] | None:
        """The record still in ``status`` and the status of the run it waits
        on, once the reconciler may act on it; None while the workflow may.

        A run that has ended is acted on at once: the record is read again
        after the run's status, so a final status the run wrote just before
        it ended is seen, and a record that changed meanwhile (a retry) is
        left to the next sweep. Any other record waits out the grace period
        (a younger change is the workflow's, still at work, or a run about to
        start)."""
        record = self._tenants.get(tenant_id)
        if record is None or record.get("status") != status:
            return None
        run = run_status(record)
        if run in ENDED:
            again = self._tenants.get(tenant_id)
            if again is None or again.get("updatedAt") != record.get("updatedAt"):
                return None
            return again, run
        if seconds_between(record["updatedAt"], now) < self._grace:
            return None
        return record, run

    # --- stuck onboardings and reminders ------------------------------------------------
    def _check_onboarding(self, tenant_id: str, now: datetime, sweep: Sweep) -> None:
        sweep.add("onboarding")
        found = self._actionable(tenant_id, ONBOARDING, now, lambda record: (
            self._workflow.execution_status(tenant_id, _attempt(record))))
        if found is None:
            return
        record, status = found
        if status == "RUNNING":
            self._remind(record, now, sweep)
            return
        name = execution_name(tenant_id, _attempt(record))
        cause = (f"its execution {name} never started" if status is None
                 else f"its execution {name} ended {status} without setting a final status")
        logger.warning("tenant stuck in onboarding: %s", cause, extra={"tenantId": tenant_id})
        self._outcomes.fail(_new_tenant(record), f"OnboardingStuck: {cause}")
        sweep.add("failed (stuck)", STUCK_TENANTS)

    def _remind(self, record: dict[str, Any], now: datetime, sweep: Sweep) -> None:
        pending = record.get("pendingDecision") or {}
        decide_by = pending.get("decideBy")
        if not decide_by or pending.get("reminderSentAt") or not pending.get("requestNotifiedAt"):
            return
        left = -seconds_between(decide_by, now)
        if not 0 < left < self._reminder:
            return
        tenant = _tenant(record)
        self._publisher.publish(APPROVAL_REMINDER, {
            **tenant, "status": ONBOARDING, "decideBy": decide_by,
            "secondsLeft": int(left),
            "eventKey": f"{tenant['tenantId']}:{APPROVAL_REMINDER}:{pending.get('waitId') or decide_by}",
        })
        self._tenants.mark_pending(tenant["tenantId"], pending["taskToken"], "reminderSentAt",
                                   utc_now())
        sweep.add("reminded")

    # --- offboarding and releases --------------------------------------------------------
    def _check_offboarding(self, tenant_id: str, now: datetime, sweep: Sweep) -> None:
        found = self._actionable(tenant_id, OFFBOARDING, now, lambda record: (
            self._offboarding.execution_status(tenant_id, _offboarding_attempt(record))))
        if found is None:
            return
        record, status = found
        if status == "RUNNING":
            return
        cause = (f"its offboarding run {offboarding_name(tenant_id, _offboarding_attempt(record))} "
                 + ("never started" if status is None else f"ended {status} without finishing"))
        logger.warning("tenant stuck in offboarding: %s", cause, extra={"tenantId": tenant_id})
        self._offboardings.fail(_new_tenant(record), f"OffboardingStuck: {cause}")
        sweep.add("offboarding ended (stuck)", STUCK_TENANTS)

    def _report_release_failure(self, tenant_id: str, now: datetime, sweep: Sweep) -> None:
        record = self._tenants.get(tenant_id) or {}
        failure = record.get("releaseFailure")
        if not failure:
            return
        logger.warning(
            "tenant %s (%s) may still hold %s: the release failed for good (%s); offboard it "
            "to purge what it holds", tenant_id, record.get("status"),
            ", ".join(failure.get("what", [])), failure.get("reason"), extra={"tenantId": tenant_id},
        )
        sweep.add("release failed", RELEASE_FAILURES)

    # --- outcome events that never went out -----------------------------------------------
    def _publish_due_outcome(self, tenant_id: str, now: datetime, sweep: Sweep) -> None:
        record = self._tenants.get(tenant_id)
        if not record or seconds_between(record["updatedAt"], now) < self._grace:
            return  # the workflow's own last step may still publish it
        if not record.get("outcomeNotifiedAt"):
            sweep.findings[OUTCOME_EVENTS_DUE] += 1  # found due, whether it goes out now or not
        if self._outcomes.publish_due(record):
            logger.info("published the %s outcome that never went out", record["outcomeDue"],
                        extra={"tenantId": tenant_id})
            sweep.add("outcome republished")


def _attempt(record: dict[str, Any]) -> int:
    return int(record.get("attempts", 1))


def _offboarding_attempt(record: dict[str, Any]) -> int:
    return int((record.get("offboarding") or {}).get("attempt", 1))


def _new_tenant(record: dict[str, Any]) -> NewTenant:
    return NewTenant(tenant_id=record["pk"], email=record["email"], name=record["name"])


def _tenant(record: dict[str, Any]) -> dict[str, str]:
    return _new_tenant(record).to_dict()
