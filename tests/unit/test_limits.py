"""Every function's timeout is set on purpose, and every lease outlives the work under it."""
import json

from chalicelib.locks import LeaseLock
from chalicelib.tenant_admin import CLAIM_LEASE_SECONDS
from scripts.deploy.template import app_functions
from scripts.shared import PROJECT_DIR

CONFIG = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
TIMEOUTS = {name: spec["lambda_timeout"] for name, spec in CONFIG["lambda_functions"].items()}


def test_every_function_has_an_explicit_timeout():
    assert set(TIMEOUTS) == set(app_functions())


def test_the_cognito_triggers_fit_cognitos_five_seconds():
    assert TIMEOUTS["pre_sign_up"] <= 5 and TIMEOUTS["post_confirmation"] <= 5


def test_the_api_fits_api_gateways_29_seconds_and_a_claim_outlives_a_request():
    assert TIMEOUTS["api_handler"] < 29
    assert CLAIM_LEASE_SECONDS >= 2 * TIMEOUTS["api_handler"]


def test_the_contact_list_lock_outlives_the_functions_that_hold_it():
    # a holder cannot still be writing when its lease runs out: its function ends first
    lease = LeaseLock(None, "table", "list")._lease
    for holder in ("create_contact_list", "release_tenant_resources"):
        assert lease >= 2 * TIMEOUTS[holder], holder
