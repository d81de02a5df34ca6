"""Workflow tier: an admin's decision racing the end of the approval window.

In AWS, SendTaskSuccess and the task's TimeoutSeconds cannot both win: either
the call is accepted (200) and the task succeeds with the decision, or the
call gets TaskTimedOut (409) and the task times out. Never a 200 followed by
a timeout. Here decisions land a few milliseconds before and after their
execution's deadline, and each answer must agree with how the tenant ended.
"""
import json
import queue
import threading
import time
from datetime import datetime

from chalice.test import Client

from chalicelib.events import ONBOARDING_COMPLETE as COMPLETE
from chalicelib.events import ONBOARDING_TIMEOUT as TIMEOUT
from tests.support import eventually
from tests.support.stage import STAGE, Stage, finalize_body, tenant

# timing-sensitive: in the timing group (tests/conftest.py), one at a time on one worker

WINDOW_SECONDS = 2
EXECUTIONS = 20
# when each decision is sent, relative to its deadline: most of them -81 ms … +17 ms,
# 6 ms apart (a request takes some 10-30 ms to reach Step Functions, so they land
# around the deadline), and two well before and two well after it, so that on a
# busy machine too some are surely in time and some surely late
OFFSETS_MS = [-900, -450] + [-81 + 6 * n for n in range(EXECUTIONS - 4)] + [450, 900]


def waiting_task(stage, execution_arn, seconds=15):
    """The task token, and when Wait For Callback was entered (epoch seconds)."""
    def scheduled():
        for event in stage.history(execution_arn):
            if event["type"] == "TaskScheduled":
                payload = json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"]
                entered = datetime.fromisoformat(payload["waitStartedAt"]).timestamp()
                return payload["taskToken"], entered
        return None

    return eventually(scheduled, seconds, f"{execution_arn} never reached Wait For Callback",
                      interval=0.02)


def approve(client, token):
    return client.http.post(
        "/tenant/finalize",
        headers={"Content-Type": "application/json"},
        body=finalize_body(token, "approved"),
    ).status_code


class DecisionSender(threading.Thread):
    """Approves each queued task at its due time, in the order queued."""

    def __init__(self, stage):
        super().__init__(name="decision-sender", daemon=True)
        self._stage = stage
        self.due = queue.Queue()  # (n, token, deadline, offset), None to stop
        self.answers = {}  # n -> (status code, ms after the deadline it was sent)
        self.error = None

    def run(self):
        try:
            with Client(self._stage.app, stage_name=STAGE) as client:
                # the first request imports the route's modules: not on the clock
                approve(client, "warm-up")
                while (item := self.due.get()) is not None:
                    n, token, deadline, offset = item
                    time.sleep(max(0.0, deadline + offset - time.time()))
                    sent = time.time()
                    status_code = approve(client, token)
                    self.answers[n] = (status_code, round((sent - deadline) * 1000))
        except Exception as error:  # surfaced by the test
            self.error = error


def test_a_decision_at_the_deadline_either_wins_or_gets_409_never_both(monkeypatch):
    with Stage(monkeypatch, approval_timeout_seconds=WINDOW_SECONDS) as stage:
        sender = DecisionSender(stage)
        sender.start()
        tenants = [tenant(900 + n) for n in range(EXECUTIONS)]
        executions = []
        # given executions entering Wait For Callback one after the other
        for n, t in enumerate(tenants):
            executions.append(stage.start(t))
            token, entered = waiting_task(stage, executions[-1])
            # when each is approved a few ms before or after its deadline
            sender.due.put((n, token, entered + WINDOW_SECONDS, OFFSETS_MS[n] / 1000))
        sender.due.put(None)
        sender.join(timeout=WINDOW_SECONDS + 15)
        assert not sender.is_alive() and sender.error is None, sender.error

        # then a 200 means the tenant is active, a 409 that its window had passed
        for arn in executions:
            assert stage.wait_for_end(arn)["status"] == "SUCCEEDED"
        events = stage.events()
        outcomes = {}
        for n, t in enumerate(tenants):
            published = [
                e["detail-type"] for e in events if e["detail"]["tenantId"] == t["tenantId"]
            ]
            outcomes[n] = (
                sender.answers[n][0],
                stage.record(t["tenantId"])["status"],
                published.count(COMPLETE),
                published.count(TIMEOUT),
            )
        expected = {
            n: (200, "active", 1, 0) if code == 200 else (409, "timeout", 0, 1)
            for n, (code, *_) in outcomes.items()
        }
        assert outcomes == expected, {
            f"sent {sender.answers[n][1]:+d} ms after the deadline": outcome
            for n, outcome in outcomes.items()
            if outcome != expected[n]
        }
        # and the race was run: some decisions came in time, some too late
        assert {code for code, *_ in outcomes.values()} == {200, 409}, sender.answers
