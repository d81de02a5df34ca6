"""A tenant's SES tenant: SES's own unit of per-tenant reputation and suppression.

One SES tenant a tenant, named ``tenant-<tenantId>`` and tagged with the stage
and the tenant id (the stage's IAM grants reach only SES tenants tagged with
its stage). Bounces and complaints are then counted, and sending paused, per
SES tenant: one tenant's bad list cannot pause the others' mail. Made once,
however often asked (an existing one counts as made when its tags say it is
this stage's tenant's), and deleted when the tenant leaves. The stage's roles
create and delete only SES tenants tagged with it, but may read any named
``tenant-*``: reading the tags is how a function tells its own SES tenant from
another stage's and from one that is gone.
"""
from typing import TYPE_CHECKING

from chalicelib.errors import ContactListQuotaReached, TenantConflict, aws_call, aws_error_code
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

logger = get_logger(__name__)

STAGE_TAG = "tenant-onboarding:stage"
TENANT_TAG = "tenant-onboarding:tenantId"


def ses_tenant_name(tenant_id: str) -> str:
    """Deterministic, so a retried step finds the SES tenant it already made
    (letters, digits, hyphens: at most 64 characters, as SES requires)."""
    return f"tenant-{tenant_id}"


class SesTenants:
    def __init__(self, sesv2_client: "SESV2Client", stage: str) -> None:
        self._ses = sesv2_client
        self._stage = stage

    def ensure(self, tenant_id: str) -> str:
        """The tenant's SES tenant, made if it is not there yet; its name."""
        name = ses_tenant_name(tenant_id)
        try:
            with aws_call("SES"):
                self._ses.create_tenant(TenantName=name, Tags=[
                    {"Key": STAGE_TAG, "Value": self._stage},
                    {"Key": TENANT_TAG, "Value": tenant_id},
                ])
        except Exception as error:
            code = aws_error_code(error)
            if code == "LimitExceededException":
                raise ContactListQuotaReached(
                    "the SES tenant quota of this account and Region is reached: ask AWS "
                    "to raise it (Service Quotas, Amazon SES)") from None
            if code != "AlreadyExistsException":
                raise
            self._check_owner(name, tenant_id)
            logger.info("SES tenant %s already existed", name, extra={"tenantId": tenant_id})
            return name
        logger.info("created SES tenant %s", name, extra={"tenantId": tenant_id})
        return name

    def _check_owner(self, name: str, tenant_id: str) -> None:
        """An SES tenant of that name made for another stage is not ours to use."""
        with aws_call("SES"):
            found = self._ses.get_tenant(TenantName=name)["Tenant"]
        tags = {tag["Key"]: tag["Value"] for tag in found.get("Tags", [])}
        if tags.get(STAGE_TAG) != self._stage or tags.get(TENANT_TAG) != tenant_id:
            raise TenantConflict(
                f"SES tenant {name} exists but belongs to stage {tags.get(STAGE_TAG)!r}, "
                f"not {self._stage!r}")

    def delete(self, name: str, tenant_id: str) -> bool:
        """Delete it; False when it was already gone.

        Looked up first: the stage may delete only SES tenants tagged with it
        (``aws:ResourceTag``), and one that is gone has no tags, so AWS answers
        its deletion AccessDenied, not NotFound (tests/test_iam.py)."""
        if not self._exists(name):
            logger.info("SES tenant %s was already gone", name, extra={"tenantId": tenant_id})
            return False
        try:
            with aws_call("SES"):
                self._ses.delete_tenant(TenantName=name)
        except Exception as error:
            if aws_error_code(error) == "NotFoundException":  # gone since
                logger.info("SES tenant %s was already gone", name, extra={"tenantId": tenant_id})
                return False
            raise
        logger.info("deleted SES tenant %s", name, extra={"tenantId": tenant_id})
        return True

    def _exists(self, name: str) -> bool:
        try:
            with aws_call("SES"):
                self._ses.get_tenant(TenantName=name)
        except Exception as error:
            if aws_error_code(error) == "NotFoundException":
                return False
            raise
        return True
