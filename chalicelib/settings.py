"""Typed settings read from the environment of the running function.

template.json sets these for every function of a stage (from the stage's own
resources, with Ref and Fn::GetAtt); the local stack resolves the same
template for its stage. Missing required values fail loudly, naming the variable.
"""
import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import SettingsError

DEFAULT_EVENT_SOURCE = "tenant-onboarding"
SUBSCRIBER_STORE = "subscriber-store"
LIST_PER_TENANT = "list-per-tenant"
TOPIC_PER_TENANT = "topic-per-tenant"
# The default first: every stage's, unless it asks for SES list management.
CONTACT_LIST_MODES = (SUBSCRIBER_STORE, LIST_PER_TENANT, TOPIC_PER_TENANT)


@dataclass(frozen=True)
class Settings:
    tenant_table_name: str
    event_bus_name: str
    # Only the trigger and the API start executions: the task functions, which
    # the state machine names, cannot name it back (a cycle in the template).
    state_machine_arn: str | None = None
    # The API starts offboarding runs; the release task disables logins.
    offboarding_state_machine_arn: str | None = None
    user_pool_id: str | None = None
    event_source: str = DEFAULT_EVENT_SOURCE
    # Secrets Manager id of the Stripe secret key; empty means Stripe is off.
    stripe_secret_id: str | None = None
    # Only set locally, to point Stripe calls at localstripe.
    stripe_api_base: str | None = None
    # Only set locally: Stripe's connect and read timeout, short for fault tests.
    stripe_timeout_seconds: float | None = None
    # reconcile: remind this long before decideBy; leave younger records alone
    approval_reminder_seconds: int = 4 * 3600
    reconcile_grace_seconds: int = 600
    # subscriber-store (each tenant's subscribers in our table, an SES tenant
    # each), list-per-tenant (the seed's: one SES list each) or topic-per-tenant
    # (one topic each on the stage's shared list); see docs/contact-lists.md.
    contact_list_mode: str = SUBSCRIBER_STORE
    shared_contact_list: str | None = None
    # the stage, as the SES tenants it makes are tagged
    stage: str = "local"
    # The address the tenants' outcome mail comes from (the stage's ses_sender,
    # template.json); None: the stage mails no outcomes. And the sign-up page
    # the approved tenant signs in at.
    ses_sender_address: str | None = None
    ses_sender_identity_arn: str | None = None
    signup_page_url: str | None = None

    def require_state_machine_arn(self) -> str:
        return _required_here(self.state_machine_arn, "STATE_MACHINE_ARN")

    def require_offboarding_state_machine_arn(self) -> str:
        return _required_here(self.offboarding_state_machine_arn, "OFFBOARDING_STATE_MACHINE_ARN")

    def require_user_pool_id(self) -> str:
        return _required_here(self.user_pool_id, "USER_POOL_ID")

    @property
    def stripe_configured(self) -> bool:
        return bool(self.stripe_secret_id)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        # Looked up at call time: tests (and chalice.test.Client) swap os.environ.
        environ = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise SettingsError(
                    f"environment variable {name} is not set; template.json sets it "
                    "for every function of the stage"
                )
            return value

        def optional(name: str) -> str | None:
            return environ.get(name, "").strip() or None

        mode = optional("CONTACT_LIST_MODE") or SUBSCRIBER_STORE
        if mode not in CONTACT_LIST_MODES:
            raise SettingsError(
                f"CONTACT_LIST_MODE must be one of {', '.join(CONTACT_LIST_MODES)}, not {mode!r}"
            )
        return cls(
            contact_list_mode=mode,
            shared_contact_list=(
                required("SHARED_CONTACT_LIST_NAME") if mode == TOPIC_PER_TENANT
                else optional("SHARED_CONTACT_LIST_NAME")
            ),
            stage=optional("STAGE") or "local",
            ses_sender_address=optional("SES_SENDER_ADDRESS"),
            ses_sender_identity_arn=optional("SES_SENDER_IDENTITY_ARN"),
            signup_page_url=optional("SIGNUP_PAGE_URL"),
            tenant_table_name=required("TENANT_TABLE_NAME"),
            event_bus_name=required("EVENT_BUS_NAME"),
            state_machine_arn=optional("STATE_MACHINE_ARN"),
            offboarding_state_machine_arn=optional("OFFBOARDING_STATE_MACHINE_ARN"),
            user_pool_id=optional("USER_POOL_ID"),
            event_source=optional("EVENT_SOURCE") or DEFAULT_EVENT_SOURCE,
            stripe_secret_id=optional("STRIPE_SECRET_ID"),
            stripe_api_base=optional("STRIPE_API_BASE"),
            stripe_timeout_seconds=_seconds(optional("STRIPE_TIMEOUT_SECONDS")),
            approval_reminder_seconds=_whole_seconds(
                optional("APPROVAL_REMINDER_SECONDS"), "APPROVAL_REMINDER_SECONDS", 4 * 3600),
            reconcile_grace_seconds=_whole_seconds(
                optional("RECONCILE_GRACE_SECONDS"), "RECONCILE_GRACE_SECONDS", 600),
        )


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise SettingsError(f"STRIPE_TIMEOUT_SECONDS must be a positive number, not {value!r}")
    return seconds


def _whole_seconds(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise SettingsError(f"{name} must be a whole number of seconds, not {value!r}")
    return int(value)


def _required_here(value: str | None, name: str) -> str:
    """Settings only some functions have (template.json gives them to those)."""
    if not value:
        raise SettingsError(
            f"environment variable {name} is not set; template.json sets it for the "
            "functions that need it"
        )
    return value


def public_config(environ: Mapping[str, str] | None = None) -> dict[str, str | bool | None]:
    """What the sign-up page and the console need to talk to Cognito (ids, not
    secrets), and whether the stage mails tenants their outcome (it has an SES
    sender), so the page promises a mail only where one is sent."""
    environ = os.environ if environ is None else environ

    def value(name: str) -> str | None:
        return environ.get(name, "").strip() or None

    return {
        "region": value("AWS_REGION") or value("AWS_DEFAULT_REGION"),
        # only locally: where the emulated Cognito answers
        "cognitoEndpoint": value("PUBLIC_COGNITO_ENDPOINT"),
        "tenantUserPoolId": value("USER_POOL_ID"),
        "tenantUserPoolClientId": value("USER_POOL_CLIENT_ID"),
        "adminUserPoolId": value("ADMIN_USER_POOL_ID"),
        "adminUserPoolClientId": value("ADMIN_USER_POOL_CLIENT_ID"),
        "outcomeMail": value("OUTCOME_MAIL") == "on",
    }
