import pytest

from chalicelib.settings import (
    DEFAULT_EVENT_SOURCE,
    SUBSCRIBER_STORE,
    TOPIC_PER_TENANT,
    Settings,
    SettingsError,
)

STAGE = {
    "TENANT_TABLE_NAME": "tenant-onboarding-dev-tenants",
    "EVENT_BUS_NAME": "tenant-onboarding-dev",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:onboarding",
    "EVENT_SOURCE": "custom-source",
    "STRIPE_SECRET_ID": "tenant-onboarding/dev/stripe-api-key",
    "STRIPE_API_BASE": "http://127.0.0.1:8420",
}


def test_given_every_variable_when_read_then_each_field_has_its_value():
    settings = Settings.from_environ(STAGE)

    assert settings == Settings(
        tenant_table_name="tenant-onboarding-dev-tenants",
        event_bus_name="tenant-onboarding-dev",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:onboarding",
        event_source="custom-source",
        stripe_secret_id="tenant-onboarding/dev/stripe-api-key",
        stripe_api_base="http://127.0.0.1:8420",
    )


def test_given_no_argument_when_read_then_the_process_environment_is_used(monkeypatch):
    for name, value in STAGE.items():
        monkeypatch.setenv(name, value)

    assert Settings.from_environ().tenant_table_name == "tenant-onboarding-dev-tenants"


@pytest.mark.parametrize("missing", ["TENANT_TABLE_NAME", "EVENT_BUS_NAME"])
def test_given_a_required_variable_missing_when_read_then_settings_error_names_it(missing):
    environ = {k: v for k, v in STAGE.items() if k != missing}

    with pytest.raises(SettingsError, match=missing):
        Settings.from_environ(environ)


def test_given_no_state_machine_arn_when_a_task_reads_settings_then_only_starting_fails():
    # the task functions are named by the state machine and cannot name it back
    settings = Settings.from_environ({k: v for k, v in STAGE.items() if k != "STATE_MACHINE_ARN"})

    assert settings.tenant_table_name == "tenant-onboarding-dev-tenants"
    with pytest.raises(SettingsError, match="STATE_MACHINE_ARN"):
        settings.require_state_machine_arn()


def test_given_a_required_variable_of_only_spaces_when_read_then_it_counts_as_missing():
    with pytest.raises(SettingsError, match="EVENT_BUS_NAME"):
        Settings.from_environ({**STAGE, "EVENT_BUS_NAME": "   "})


def test_given_an_empty_stripe_secret_id_when_read_then_stripe_is_not_configured():
    settings = Settings.from_environ({**STAGE, "STRIPE_SECRET_ID": ""})

    assert settings.stripe_secret_id is None
    assert settings.stripe_configured is False


def test_given_a_stripe_secret_id_when_read_then_stripe_is_configured():
    assert Settings.from_environ(STAGE).stripe_configured is True


def test_given_no_event_source_when_read_then_the_default_source_is_used():
    environ = {k: v for k, v in STAGE.items() if k != "EVENT_SOURCE"}

    assert Settings.from_environ(environ).event_source == DEFAULT_EVENT_SOURCE


def test_given_no_contact_list_mode_when_read_then_subscriber_store_without_shared_list():
    settings = Settings.from_environ(STAGE)

    assert settings.contact_list_mode == SUBSCRIBER_STORE
    assert settings.shared_contact_list is None


def test_given_topic_per_tenant_with_a_shared_list_when_read_then_both_are_set():
    settings = Settings.from_environ(
        {**STAGE, "CONTACT_LIST_MODE": "topic-per-tenant", "SHARED_CONTACT_LIST_NAME": "shared"}
    )

    assert (settings.contact_list_mode, settings.shared_contact_list) == (TOPIC_PER_TENANT, "shared")


def test_given_topic_per_tenant_without_a_shared_list_when_read_then_settings_error_names_it():
    with pytest.raises(SettingsError, match="SHARED_CONTACT_LIST_NAME"):
        Settings.from_environ({**STAGE, "CONTACT_LIST_MODE": "topic-per-tenant"})


def test_given_an_unknown_contact_list_mode_when_read_then_settings_error_names_the_variable():
    with pytest.raises(SettingsError, match="CONTACT_LIST_MODE"):
        Settings.from_environ({**STAGE, "CONTACT_LIST_MODE": "one-big-list"})


def test_given_reconcile_settings_when_read_then_whole_seconds_or_a_clear_error():
    assert Settings.from_environ(STAGE).approval_reminder_seconds == 4 * 3600
    assert Settings.from_environ({**STAGE, "RECONCILE_GRACE_SECONDS": "0"}).reconcile_grace_seconds == 0
    with pytest.raises(SettingsError, match="APPROVAL_REMINDER_SECONDS must be a whole number"):
        Settings.from_environ({**STAGE, "APPROVAL_REMINDER_SECONDS": "four hours"})


def test_the_public_config_says_whether_the_stage_mails_outcomes():
    from chalicelib.settings import public_config

    assert public_config({"OUTCOME_MAIL": "on"})["outcomeMail"] is True
    assert public_config({"OUTCOME_MAIL": "off"})["outcomeMail"] is False
    assert public_config({})["outcomeMail"] is False
    assert "SES_SENDER_ADDRESS" not in str(public_config({"OUTCOME_MAIL": "on"}))
