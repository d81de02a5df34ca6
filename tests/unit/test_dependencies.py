import pytest

from chalicelib import dependencies as deps
from chalicelib.billing import NoBilling
from chalicelib.contact_lists import ContactLists, SharedListTopics, SubscriberStoreLists
from chalicelib.errors import SettingsError, StripeNotConfigured
from chalicelib.tenants import NewTenant, TenantRepository


@pytest.fixture
def stage(monkeypatch):
    for name in ("CONTACT_LIST_MODE", "SHARED_CONTACT_LIST_NAME", "EVENT_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TENANT_TABLE_NAME", "tenants")
    monkeypatch.setenv("EVENT_BUS_NAME", "bus")
    monkeypatch.setenv(
        "STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    )


def test_given_a_stage_when_tenants_is_asked_for_twice_then_one_repository_is_built(stage):
    first = deps.tenants()

    assert isinstance(first, TenantRepository)
    assert deps.tenants() is first


def test_given_a_cached_repository_when_reset_then_a_new_one_is_built(stage):
    first = deps.tenants()

    deps.reset()

    assert deps.tenants() is not first


def test_given_an_override_when_asked_for_then_the_override_is_returned(stage):
    fake = object()
    deps.override("tenants", fake)

    assert deps.tenants() is fake


def test_given_two_functions_when_each_asks_for_tenants_then_each_builds_its_own(stage):
    with deps.within("create_tenant_record"):
        first = deps.tenants()
        assert deps.tenants() is first
        assert deps.current_function() == "create_tenant_record"
    with deps.within("api_handler"):
        other = deps.tenants()

    assert other is not first
    assert deps.built("tenants") == [first, other]


def test_given_an_override_when_any_function_asks_then_it_gets_the_override(stage):
    fake = object()
    deps.override("tenants", fake)

    with deps.within("create_tenant_record"):
        assert deps.tenants() is fake


def test_given_built_repositories_when_forgotten_then_every_function_builds_again(stage):
    with deps.within("create_tenant_record"):
        first = deps.tenants()
    deps.override("session", object())

    deps.forget("tenants", "session")

    assert deps.built("tenants") == [] and deps.built("session") == []
    with deps.within("create_tenant_record"):
        assert deps.tenants() is not first


def test_given_no_stripe_secret_id_when_a_customer_is_asked_for_then_stripe_not_configured(stage):
    billing = deps.billing()

    assert isinstance(billing, NoBilling)
    with pytest.raises(StripeNotConfigured):
        billing.create_customer(NewTenant("t-1", "ada@example.com", "Ada Ltd"))
    assert billing.delete_customer("cus_1", "t-1") is False


def test_given_no_stage_variables_when_a_service_is_asked_for_then_settings_error():
    with pytest.raises(SettingsError, match="TENANT_TABLE_NAME"):
        deps.tenants()


def test_given_the_default_mode_when_contact_lists_is_asked_for_then_the_subscriber_store(stage):
    assert isinstance(deps.contact_lists(), SubscriberStoreLists)


def test_given_list_per_tenant_when_contact_lists_is_asked_for_then_one_ses_list_each(
    stage, monkeypatch
):
    monkeypatch.setenv("CONTACT_LIST_MODE", "list-per-tenant")

    assert isinstance(deps.contact_lists(), ContactLists)


def test_given_topic_per_tenant_when_contact_lists_is_asked_for_then_shared_list_topics(
    stage, monkeypatch
):
    monkeypatch.setenv("CONTACT_LIST_MODE", "topic-per-tenant")
    monkeypatch.setenv("SHARED_CONTACT_LIST_NAME", "shared")

    assert isinstance(deps.contact_lists(), SharedListTopics)


def test_given_the_local_stacks_override_when_limits_are_read_then_only_the_read_widens():
    assert deps.client_limits("dynamodb", {}) == (2.0, 5.0, 3)
    assert deps.client_limits("stepfunctions", {}) == (0.5, 1.5, 2)
    assert deps.client_limits("dynamodb", {"AWS_CLIENT_TIMEOUT_SECONDS": "30"}) == (2.0, 30.0, 3)


def test_given_an_invocation_with_no_time_left_when_a_built_service_calls_aws_then_it_is_refused(
    stage, aws
):
    from chalicelib import budget
    from chalicelib.errors import AwsServiceUnavailable
    from scripts.local.lambdas import LocalContext

    spent = LocalContext("api_handler", "arn", int(budget.MARGIN_SECONDS * 1000))
    with budget.invocation(spent), pytest.raises(AwsServiceUnavailable, match="DynamoDB"):
        deps.tenants().get("t-1")  # refused before anything is sent: no table needed


def test_given_a_sender_when_the_outcome_mail_is_sent_then_sendemail_is_made_once_however_lost(
    stage, aws, monkeypatch
):
    # SES has no idempotency key: a SendEmail retried by botocore after its
    # answer was lost would mail the tenant again
    from botocore.exceptions import ReadTimeoutError

    monkeypatch.setenv("SES_SENDER_ADDRESS", "onboarding@example.com")
    mail = deps.outcome_mail()
    sends: list[str] = []

    def lost(request, **_):
        sends.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    sending = mail._sending
    sending.meta.events.register("before-send.sesv2.SendEmail", lost)
    with pytest.raises(ReadTimeoutError):
        sending.send_email(FromEmailAddress="onboarding@example.com", Destination={},
                           Content={"Simple": {"Subject": {"Data": "s"}, "Body": {}}})

    assert len(sends) == 1
    # its other SES calls (the association), and every other SES client, are retried
    assert mail._ses is deps._client("sesv2")
    assert mail._ses.meta.config.retries["total_max_attempts"] == 3
