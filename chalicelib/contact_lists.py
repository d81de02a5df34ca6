"""The tenant's Amazon SES contact list (SES v2 list management)."""
import logging
from typing import Any

from chalicelib.errors import aws_call, aws_error_code

logger = logging.getLogger(__name__)


def contact_list_name(tenant_id: str) -> str:
    """Deterministic, so a retried step finds the list it already made."""
    return f"tenant-{tenant_id}"


class ContactLists:
    def __init__(self, sesv2_client: Any) -> None:
        self._ses = sesv2_client

    def ensure_list(self, tenant_id: str) -> str:
        """Create the tenant's list; an existing list of that name counts as made."""
        name = contact_list_name(tenant_id)
        try:
            with aws_call("SES"):
                self._ses.create_contact_list(
                    ContactListName=name,
                    Description=f"Subscribers of tenant {tenant_id}",
                )
            logger.info("created SES contact list %s", name, extra={"tenantId": tenant_id})
        except Exception as error:
            if aws_error_code(error) != "AlreadyExistsException":
                raise
            logger.info(
                "SES contact list %s already existed", name, extra={"tenantId": tenant_id}
            )
        return name
