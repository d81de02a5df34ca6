"""The load run (scripts/bench/load.py) at a size that fits CI: many
concurrent sign-ups against the local stack, none lost or duplicated.
`make load` runs it at the default N=200."""
import os

import pytest

from scripts.bench.load import print_report, run_with_own_stack

# timing-sensitive: not beside the decision race
pytestmark = pytest.mark.e2e  # in the timing group (tests/conftest.py)
SIGNUPS = int(os.environ.get("LOAD_TEST_SIGNUPS", "24"))


def test_concurrent_onboardings_are_neither_lost_nor_duplicated():
    report = run_with_own_stack(SIGNUPS, reject_every=4, stripe=True, seconds=240)
    print_report(report)

    assert report["problems"] == []
    assert report["records"] == SIGNUPS
    assert report["outcomeEvents"] == SIGNUPS
    assert report["active"] + report["rejected"] == SIGNUPS
    assert report["rejected"] == len(range(0, SIGNUPS, 4))
    assert report["duplicateStripeCustomers"] == 0
    assert report["executionsStillRunning"] == 0
