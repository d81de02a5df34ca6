"""What Cognito does around sign-up that moto's server does not.

moto accepts ``SignUp`` without the pool's required attributes, confirms a
sign-up without marking the email verified, and never runs triggers. Real
Cognito, on a pool like ours:
- refuses a ``SignUp`` that lacks a required attribute (InvalidParameterException);
- on ``ConfirmSignUp`` with the emailed code, sets ``email_verified`` and then
  calls the PostConfirmation Lambda with ``PostConfirmation_ConfirmSignUp``;
  ``AdminConfirmSignUp`` calls it too, without verifying the email;
- if that Lambda fails, answers the confirm call with
  UserLambdaValidationException, though the user stays confirmed.
This module reproduces that. Confirmation codes are not checked locally: no
email is sent, so any code is accepted (README, "Local stack").
"""
import json
import logging
from typing import Any, Dict, Optional

logger = logging.getLogger("local.cognito")

CONFIRM_SIGN_UP = "PostConfirmation_ConfirmSignUp"


class CognitoError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LocalCognito:
    def __init__(self, cognito_client: Any, invoke: Any) -> None:
        """``invoke(function_arn, payload_bytes) -> (function_error, payload)``."""
        self._cognito = cognito_client
        self._invoke = invoke

    def before_sign_up(self, request: Dict[str, Any]) -> None:
        pool_id = self._pool_of_client(request.get("ClientId", ""))
        if pool_id is None:
            return  # let moto answer with its own error
        pool = self._cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        given = {a.get("Name") for a in request.get("UserAttributes") or []}
        given.update(pool.get("UsernameAttributes", []))  # the username fills these
        missing = [
            a["Name"]
            for a in pool.get("SchemaAttributes", [])
            if a.get("Required") and a["Name"] not in given
        ]
        if missing:
            raise CognitoError(
                "InvalidParameterException",
                "Attributes did not conform to the schema: "
                + ", ".join(f"{name}: The attribute {name} is required" for name in missing),
            )

    def after_confirm(self, request: Dict[str, Any], admin: bool) -> None:
        if admin:
            pool_id = request.get("UserPoolId")
        else:
            pool_id = self._pool_of_client(request.get("ClientId", ""))
        if not pool_id:
            return
        pool = self._cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        username = request["Username"]
        if not admin and "email" in pool.get("AutoVerifiedAttributes", []):
            self._cognito.admin_update_user_attributes(
                UserPoolId=pool_id,
                Username=username,
                UserAttributes=[{"Name": "email_verified", "Value": "true"}],
            )
        trigger = (pool.get("LambdaConfig") or {}).get("PostConfirmation")
        if not trigger:
            return
        user = self._cognito.admin_get_user(UserPoolId=pool_id, Username=username)
        attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        attributes["cognito:user_status"] = "CONFIRMED"
        event = {
            "version": "1",
            "region": self._cognito.meta.region_name,
            "userPoolId": pool_id,
            "userName": user["Username"],
            "callerContext": {
                "awsSdkVersion": "aws-sdk-unknown-unknown",
                "clientId": request.get("ClientId", "CLIENT_ID_NOT_APPLICABLE"),
            },
            "triggerSource": CONFIRM_SIGN_UP,
            "request": {"userAttributes": attributes},
            "response": {},
        }
        logger.info("PostConfirmation trigger for user %s", user["Username"])
        error, payload = self._invoke(trigger, json.dumps(event).encode())
        if error:
            message = _error_message(payload)
            raise CognitoError(
                "UserLambdaValidationException",
                f"PostConfirmation failed with error {message}.",
            )

    def _pool_of_client(self, client_id: str) -> Optional[str]:
        for page in self._cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
            for pool in page["UserPools"]:
                clients = self._cognito.list_user_pool_clients(
                    UserPoolId=pool["Id"], MaxResults=60
                )["UserPoolClients"]
                if any(c["ClientId"] == client_id for c in clients):
                    return pool["Id"]
        return None


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", "unknown error"))
    except (ValueError, AttributeError):
        return "unknown error"
