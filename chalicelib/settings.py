"""Typed settings read from the environment of the running function.

Each stage sets these in ``.chalice/config.json``; the local stack sets them
for its own stage. Missing required values fail loudly, naming the variable.
"""
import os
from dataclasses import dataclass
from typing import Mapping, Optional

DEFAULT_EVENT_SOURCE = "tenant-onboarding"


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    tenant_table_name: str
    event_bus_name: str
    state_machine_arn: str
    event_source: str = DEFAULT_EVENT_SOURCE
    # Secrets Manager id of the Stripe secret key; empty means Stripe is off.
    stripe_secret_id: Optional[str] = None
    # Only set locally, to point Stripe calls at localstripe.
    stripe_api_base: Optional[str] = None

    @property
    def stripe_configured(self) -> bool:
        return bool(self.stripe_secret_id)

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        # Looked up at call time: tests (and chalice.test.Client) swap os.environ.
        environ = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise SettingsError(
                    f"environment variable {name} is not set; set it for the "
                    "stage in .chalice/config.json"
                )
            return value

        def optional(name: str) -> Optional[str]:
            return environ.get(name, "").strip() or None

        return cls(
            tenant_table_name=required("TENANT_TABLE_NAME"),
            event_bus_name=required("EVENT_BUS_NAME"),
            state_machine_arn=required("STATE_MACHINE_ARN"),
            event_source=optional("EVENT_SOURCE") or DEFAULT_EVENT_SOURCE,
            stripe_secret_id=optional("STRIPE_SECRET_ID"),
            stripe_api_base=optional("STRIPE_API_BASE"),
        )
