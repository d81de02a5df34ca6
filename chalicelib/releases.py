"""Giving back what onboarding took: the tenant's SES place, its Stripe customer, its login.

After a rejection or a timeout, and when a tenant is offboarded. An AWS
account holds one SES contact list per Region and 20 topics per list, so a
rejected tenant that kept its place would block later ones; a Stripe
customer costs and clutters; a rejected tenant must not sign in.

Each release is idempotent: done again, or found already done by hand (the
list, topic, customer or user gone), it succeeds and is recorded once. The
record keeps what was released and when (``released``), and stops naming it
(``list``, ``topic``, ``stripeCustomerId`` go), so a retry makes it again.
"""
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from chalicelib.contact_lists import ContactListPlace
from chalicelib.errors import InvalidTaskInput
from chalicelib.logs import get_logger
from chalicelib.tenants import TenantRepository

if TYPE_CHECKING:
    from chalicelib.billing import BillingProvider
    from chalicelib.contact_lists import ContactListPlaces
    from chalicelib.logins import TenantLogins

logger = get_logger(__name__)

CONTACT_LIST = "contactList"
STRIPE_CUSTOMER = "stripeCustomer"
USER = "user"
RELEASES = (USER, STRIPE_CUSTOMER, CONTACT_LIST)


class TenantReleases:
    def __init__(
        self,
        tenants: TenantRepository,
        contact_lists: "ContactListPlaces",
        logins: "TenantLogins",
        billing: "Callable[[], BillingProvider]",
        clock: Callable[[], str],
    ) -> None:
        """``billing`` builds the Stripe client only when a customer is to go
        (a stage without Stripe has none to delete)."""
        self._tenants = tenants
        self._contact_lists = contact_lists
        self._logins = logins
        self._billing = billing
        self._clock = clock

    def release(self, tenant_id: str, what: Iterable[str]) -> dict[str, Any]:
        """Give back each of ``what`` the tenant still holds; what was released now."""
        what = list(what)
        unknown = sorted(set(what) - set(RELEASES))
        if unknown:
            raise InvalidTaskInput(f"cannot release {', '.join(unknown)}")
        record = self._tenants.require(tenant_id)
        done: dict[str, Any] = {}
        for item in what:
            details = getattr(self, f"_release_{item}")(tenant_id, record)
            if details is not None:
                done[item] = details
        return done

    def _release_contactList(self, tenant_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        place = ContactListPlace.of_record(record)
        if place is None:
            return None  # never made, or already released
        # by the mode the record names: the stage may have changed mode since
        existed = self._contact_lists.release_for_tenant(tenant_id, place)
        details = {"at": self._clock(), **place.to_dict(), "existed": existed}
        self._tenants.mark_released(tenant_id, CONTACT_LIST, details,
                                    removes=("list", "topic", "sesTenant", "listMode"))
        return details

    def _release_stripeCustomer(self, tenant_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        customer = record.get("stripeCustomerId")
        if not customer:
            return None
        existed = self._billing().delete_customer(customer, tenant_id)
        details = {"at": self._clock(), "customerId": customer, "existed": existed}
        self._tenants.mark_released(tenant_id, STRIPE_CUSTOMER, details,
                                    removes=("stripeCustomerId",))
        return details

    def _release_user(self, tenant_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        if (record.get("released") or {}).get(USER):
            return None
        existed = self._logins.disable(tenant_id)
        details = {"at": self._clock(), "disabled": True, "existed": existed}
        self._tenants.mark_released(tenant_id, USER, details)
        return details
