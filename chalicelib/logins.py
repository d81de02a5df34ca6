"""The tenant's login: its user in the stage's Cognito user pool.

A rejected or offboarded tenant's user is disabled: it can no longer sign
in, and its record stays. A user deleted by hand counts as done: there is
nothing left to disable. (Neither a rejected nor an offboarded tenant can be
retried, so no retry has a disabled user to enable again.)
"""
from typing import TYPE_CHECKING

from chalicelib.errors import aws_call, aws_error_code
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

logger = get_logger(__name__)


class TenantLogins:
    def __init__(self, cognito_client: "CognitoIdentityProviderClient", user_pool_id: str) -> None:
        self._cognito = cognito_client
        self._pool = user_pool_id

    def disable(self, tenant_id: str) -> bool:
        """False when the user no longer exists (deleted by hand)."""
        try:
            with aws_call("Cognito"):
                self._cognito.admin_disable_user(UserPoolId=self._pool, Username=tenant_id)
        except Exception as error:
            if aws_error_code(error) == "UserNotFoundException":
                logger.info("no Cognito user to disable", extra={"tenantId": tenant_id})
                return False
            raise
        logger.info("Cognito user disabled", extra={"tenantId": tenant_id})
        return True
