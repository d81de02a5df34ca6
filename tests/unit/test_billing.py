import socket
import subprocess
import sys
import uuid

import boto3
import pytest
import requests

from chalicelib.billing import StripeBilling, StripeKeyProvider, customer_idempotency_key
from chalicelib.errors import (
    AwsServiceUnavailable,
    StripeAuthenticationFailed,
    StripeUnavailable,
)
from chalicelib.tenants import NewTenant
from tests.support import PROJECT_DIR
from tests.unit.conftest import REGION, FailingClient

LOCAL_KEY = "sk_test_local"


def a_tenant() -> NewTenant:
    # localstripe keeps every customer of the session: each test gets its own id.
    tenant_id = str(uuid.uuid4())
    return NewTenant(tenant_id=tenant_id, email=f"{tenant_id[:8]}@example.com", name="Ada Ltd")


def stored_customer(base: str, customer_id: str) -> dict:
    # By id rather than through a list page: the session's localstripe may hold
    # more customers than one page, oldest first.
    response = requests.get(f"{base}/v1/customers/{customer_id}", auth=(LOCAL_KEY, ""))
    response.raise_for_status()
    return response.json()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


# --- import cost --------------------------------------------------------------
def test_given_a_cold_start_when_billing_and_app_are_imported_then_stripe_is_not():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, chalicelib.billing, app; assert 'stripe' not in sys.modules",
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


# --- idempotency key ----------------------------------------------------------
def test_given_a_tenant_id_when_the_key_is_derived_twice_then_it_is_the_same():
    assert customer_idempotency_key("t-1") == customer_idempotency_key("t-1")


def test_given_a_tenant_id_when_the_key_is_derived_then_it_contains_the_id():
    assert "t-1" in customer_idempotency_key("t-1")


def test_given_two_tenants_when_keys_are_derived_then_they_differ():
    assert customer_idempotency_key("t-1") != customer_idempotency_key("t-2")


# --- create_customer against localstripe --------------------------------------
def test_given_a_valid_key_when_a_customer_is_created_then_a_cus_id_is_returned(localstripe):
    billing = StripeBilling(lambda: LOCAL_KEY, api_base=localstripe, max_network_retries=0)

    customer_id = billing.create_customer(a_tenant())

    assert customer_id.startswith("cus_")


def test_given_a_valid_key_when_a_customer_is_created_then_stripe_holds_its_details(
    localstripe,
):
    billing = StripeBilling(lambda: LOCAL_KEY, api_base=localstripe, max_network_retries=0)
    tenant = a_tenant()

    customer_id = billing.create_customer(tenant)

    stored = stored_customer(localstripe, customer_id)
    assert stored["email"] == tenant.email
    assert stored["name"] == tenant.name
    assert stored["metadata"] == {"tenantId": tenant.tenant_id}


def test_given_a_rejected_key_when_a_customer_is_created_then_auth_failed_without_the_key(
    localstripe,
):
    key = "bad"
    billing = StripeBilling(lambda: key, api_base=localstripe, max_network_retries=0)

    with pytest.raises(StripeAuthenticationFailed) as raised:
        billing.create_customer(a_tenant())

    assert key not in str(raised.value)
    # Nothing chained either: a traceback must not carry Stripe's own message.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_given_stripe_unreachable_when_a_customer_is_created_then_stripe_unavailable():
    base = f"http://127.0.0.1:{closed_port()}"
    billing = StripeBilling(lambda: LOCAL_KEY, api_base=base, max_network_retries=0)

    with pytest.raises(StripeUnavailable):
        billing.create_customer(a_tenant())


def test_given_stripe_unreachable_when_a_customer_is_created_then_the_key_is_not_in_the_error():
    key = "sk_test_" + uuid.uuid4().hex
    base = f"http://127.0.0.1:{closed_port()}"
    billing = StripeBilling(lambda: key, api_base=base, max_network_retries=0)

    with pytest.raises(StripeUnavailable) as raised:
        billing.create_customer(a_tenant())

    assert key not in str(raised.value)


# --- StripeKeyProvider --------------------------------------------------------
class CountingSecrets:
    """Wraps a Secrets Manager client and counts get_secret_value calls."""

    def __init__(self, client) -> None:
        self._client = client
        self.calls = 0

    def get_secret_value(self, **kwargs):
        self.calls += 1
        return self._client.get_secret_value(**kwargs)


@pytest.fixture
def secrets(aws):
    return boto3.client("secretsmanager", region_name=REGION)


def test_given_a_secret_when_the_key_is_asked_for_twice_then_secrets_manager_is_read_once(
    secrets,
):
    secrets.create_secret(Name="stripe", SecretString=" sk_test_123 \n")
    counting = CountingSecrets(secrets)
    provider = StripeKeyProvider(counting, "stripe")

    keys = (provider(), provider())

    assert keys == ("sk_test_123", "sk_test_123")
    assert counting.calls == 1


def test_given_an_empty_secret_when_the_key_is_asked_for_then_auth_failed(secrets):
    secrets.create_secret(Name="stripe", SecretString="   ")
    provider = StripeKeyProvider(secrets, "stripe")

    with pytest.raises(StripeAuthenticationFailed, match="stripe"):
        provider()


def test_given_secrets_manager_throttles_when_the_key_is_asked_for_then_aws_unavailable():
    provider = StripeKeyProvider(FailingClient("ThrottlingException"), "stripe")

    with pytest.raises(AwsServiceUnavailable):
        provider()


def test_given_a_rotated_key_when_the_cached_one_fails_then_the_secret_is_read_again(localstripe):
    from chalicelib.billing import StripeBilling

    keys = iter(["bad", "sk_test_rotated"])

    class Provider:
        forgotten = 0

        def __init__(self):
            self.key = next(keys)

        def forget(self):
            Provider.forgotten += 1
            self.key = next(keys)

        def __call__(self):
            return self.key

    tenant = NewTenant("33333333-2222-4333-8444-555555555555", "rot@example.com", "Rot")
    customer = StripeBilling(Provider(), api_base=localstripe, max_network_retries=0).create_customer(tenant)

    assert customer.startswith("cus_")
    assert Provider.forgotten == 1


def test_given_an_in_flight_idempotent_request_when_retried_then_stripe_unavailable(monkeypatch):
    import stripe

    from chalicelib.billing import StripeBilling
    from chalicelib.errors import StripeUnavailable

    billing = StripeBilling(lambda: "sk_test_x", api_base="http://127.0.0.1:1")

    class InFlight:
        class v1:
            class customers:
                @staticmethod
                def create(**_):
                    raise stripe.IdempotencyError("A request with this key is in progress",
                                                  http_status=409)

    monkeypatch.setattr(billing, "stripe_client", lambda: InFlight)
    with pytest.raises(StripeUnavailable, match="still processing"):
        billing.create_customer(NewTenant("t-1", "a@example.com", "A"))


def test_given_a_retried_attempt_when_the_key_is_derived_then_it_is_a_new_one():
    # a released (deleted) customer must not be replayed to the retry
    assert customer_idempotency_key("t-1", 2) != customer_idempotency_key("t-1")
    assert customer_idempotency_key("t-1", 1) == customer_idempotency_key("t-1")


def test_given_a_customer_when_deleted_then_stripe_no_longer_has_it(localstripe):
    billing = StripeBilling(lambda: LOCAL_KEY, api_base=localstripe, max_network_retries=0)
    customer_id = billing.create_customer(a_tenant())

    assert billing.delete_customer(customer_id, "t-1") is True
    response = requests.get(f"{localstripe}/v1/customers/{customer_id}", auth=(LOCAL_KEY, ""))
    assert response.status_code == 404 or response.json().get("deleted") is True
    # deleted by hand, or twice: nothing left to do, and no error
    assert billing.delete_customer(customer_id, "t-1") is False
