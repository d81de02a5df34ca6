"""What Cognito does around sign-up that moto's server does not.

moto accepts ``SignUp`` without the pool's required attributes, confirms a
sign-up without marking the email verified, and never runs triggers. Real
Cognito, on a pool like ours:
- refuses a ``SignUp`` that lacks a required attribute (InvalidParameterException);
- on ``ConfirmSignUp`` with the emailed code, sets ``email_verified`` and then
  calls the PostConfirmation Lambda with ``PostConfirmation_ConfirmSignUp``;
  ``AdminConfirmSignUp`` calls it too, without verifying the email;
- if that Lambda fails, answers the confirm call with
  UserLambdaValidationException, though the user stays confirmed;
- refuses to confirm a user who is not UNCONFIRMED (NotAuthorizedException
  "User cannot be confirmed. Current status is CONFIRMED"): the trigger runs once;
- refuses an attribute value over 2,048 characters in SignUp, AdminCreateUser,
  AdminUpdateUserAttributes and UpdateUserAttributes (InvalidParameterException);
- in a pool whose UsernameConfiguration says CaseSensitive false, refuses a
  SignUp or AdminCreateUser naming an existing user in another case
  (UsernameExistsException "An account with the given email already exists.");
- in such a pool, finds the user any call names (ConfirmSignUp, AdminGetUser, ...)
  whatever the case of the name;
- runs the PreSignUp trigger before SignUp and AdminCreateUser, with the event
  Cognito sends (``PreSignUp_SignUp``, ``PreSignUp_AdminCreateUser``); its
  error refuses the call: UserLambdaValidationException "PreSignUp failed with
  error <message>.".
This module reproduces that. Confirmation codes are not checked locally: no
email is sent, so any code is accepted (README, "Local stack").
"""
import json
import logging
from typing import Any, Dict, List, Optional

from botocore.exceptions import ClientError

logger = logging.getLogger("local.cognito")

CONFIRM_SIGN_UP = "PostConfirmation_ConfirmSignUp"
# LocalCognito's own calls carry this header, and go to moto unchanged.
INTERNAL_HEADER = "X-Local-Cognito"
MAX_ATTRIBUTE_VALUE_LENGTH = 2048
WITH_USER_ATTRIBUTES = (
    "SignUp", "AdminCreateUser", "AdminUpdateUserAttributes", "UpdateUserAttributes"
)
CREATES_USER = ("SignUp", "AdminCreateUser")
CONFIRMS = ("ConfirmSignUp", "AdminConfirmSignUp")
# Checked and done under one lock, so two concurrent calls cannot both pass.
CHANGES_USER_STATE = CREATES_USER + CONFIRMS


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
        self._pool_ids: Dict[str, str] = {}  # client id -> pool id; a client never moves
        service = cognito_client.meta.service_model.service_id.hyphenize()
        cognito_client.meta.events.register(f"before-sign.{service}", _mark_internal)

    def before(self, operation: str, request: Dict[str, Any]) -> Dict[str, Any]:
        """Refuse what Cognito would refuse; return the request to hand to moto
        (naming the user as moto knows it)."""
        if operation in WITH_USER_ATTRIBUTES:
            _refuse_long_attribute_values(request)
        username = request.get("Username")
        pool = self._pool_of(request) if isinstance(username, str) else None
        if pool is None:
            return request  # let moto answer
        if operation in CREATES_USER:
            if operation == "SignUp":
                _refuse_missing_required_attributes(pool, request)
            if request.get("MessageAction") != "RESEND":
                self._refuse_existing_username(pool, username)
                self._run_pre_sign_up(pool, operation, request)
            return request
        if operation not in CONFIRMS and not _case_insensitive(pool):
            return request
        user = self._user_named(pool, username)
        if user is None:
            return request  # moto answers UserNotFoundException
        if operation in CONFIRMS and user["UserStatus"] != "UNCONFIRMED":
            raise CognitoError(
                "NotAuthorizedException",
                f"User cannot be confirmed. Current status is {user['UserStatus']}",
            )
        if username in _names_of(user, pool):
            return request
        return {**request, "Username": user["Username"]}

    def _run_pre_sign_up(self, pool: Dict[str, Any], operation: str, request: Dict[str, Any]) -> None:
        """Cognito's PreSignUp trigger: its error refuses the sign-up, with its message."""
        trigger = (pool.get("LambdaConfig") or {}).get("PreSignUp")
        if not trigger:
            return
        attributes = {a["Name"]: a.get("Value", "") for a in request.get("UserAttributes") or []}
        if "email" in pool.get("UsernameAttributes", []):
            attributes.setdefault("email", request["Username"])
        event = {
            "version": "1",
            "region": self._cognito.meta.region_name,
            "userPoolId": pool["Id"],
            "userName": request["Username"],
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown",
                              "clientId": request.get("ClientId", "CLIENT_ID_NOT_APPLICABLE")},
            "triggerSource": f"PreSignUp_{operation}",
            "request": {"userAttributes": attributes,
                        "validationData": _as_map(request.get("ValidationData"))},
            "response": {"autoConfirmUser": False, "autoVerifyEmail": False,
                         "autoVerifyPhone": False},
        }
        error, payload = self._invoke(trigger, json.dumps(event).encode())
        if error:
            raise CognitoError(
                "UserLambdaValidationException",
                f"PreSignUp failed with error {_error_message(payload)}.",
            )

    def after(self, operation: str, request: Dict[str, Any]) -> None:
        """What Cognito does once moto has done ``operation``."""
        if operation in CONFIRMS:
            self.after_confirm(request, admin=operation == "AdminConfirmSignUp")

    def _pool_of(self, request: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        pool_id = request.get("UserPoolId") or self._pool_of_client(request.get("ClientId", ""))
        if not pool_id:
            return None
        try:
            return self._cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        except ClientError:
            return None

    def _user_named(self, pool: Dict[str, Any], username: str) -> Optional[Dict[str, Any]]:
        """The user ``username`` names, as moto finds it or, in a
        case-insensitive pool, whatever its case."""
        try:
            return self._cognito.admin_get_user(UserPoolId=pool["Id"], Username=username)
        except self._cognito.exceptions.UserNotFoundException:
            if not _case_insensitive(pool):
                return None
        wanted = username.lower()
        for page in self._cognito.get_paginator("list_users").paginate(UserPoolId=pool["Id"]):
            for user in page["Users"]:
                if wanted in (name.lower() for name in _names_of(user, pool)):
                    return user
        return None

    def _refuse_existing_username(self, pool: Dict[str, Any], username: str) -> None:
        if not _case_insensitive(pool):
            return  # moto refuses an exact duplicate itself
        if self._user_named(pool, username) is None:
            return
        if "email" in pool.get("UsernameAttributes", []) and "@" in username:
            raise CognitoError(
                "UsernameExistsException", "An account with the given email already exists."
            )
        raise CognitoError("UsernameExistsException", "User already exists")

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
        if client_id in self._pool_ids:
            return self._pool_ids[client_id]
        for page in self._cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
            for pool in page["UserPools"]:
                clients = self._cognito.list_user_pool_clients(
                    UserPoolId=pool["Id"], MaxResults=60
                )["UserPoolClients"]
                if any(c["ClientId"] == client_id for c in clients):
                    self._pool_ids[client_id] = pool["Id"]
                    return pool["Id"]
        return None


def _mark_internal(request: Any, **_: Any) -> None:
    request.headers[INTERNAL_HEADER] = "1"


def _case_insensitive(pool: Dict[str, Any]) -> bool:
    """As the pool says; Cognito's default, without UsernameConfiguration, is case-sensitive."""
    return (pool.get("UsernameConfiguration") or {}).get("CaseSensitive") is False


def _names_of(user: Dict[str, Any], pool: Dict[str, Any]) -> List[str]:
    """What a user can be named by: its username and its username attributes (email)."""
    attributes = user.get("UserAttributes") or user.get("Attributes") or []
    aliases = set(pool.get("UsernameAttributes", []))
    return [user["Username"]] + [a["Value"] for a in attributes if a["Name"] in aliases]


def _refuse_long_attribute_values(request: Dict[str, Any]) -> None:
    too_long = [
        f"Value at 'userAttributes.{index}.member.value' failed to satisfy constraint: "
        f"Member must have length less than or equal to {MAX_ATTRIBUTE_VALUE_LENGTH}"
        for index, attribute in enumerate(request.get("UserAttributes") or [], start=1)
        if len(str(attribute.get("Value", ""))) > MAX_ATTRIBUTE_VALUE_LENGTH
    ]
    if too_long:
        count = f"{len(too_long)} validation error{'s' if len(too_long) > 1 else ''}"
        raise CognitoError(
            "InvalidParameterException", f"{count} detected: " + "; ".join(too_long)
        )


def _refuse_missing_required_attributes(pool: Dict[str, Any], request: Dict[str, Any]) -> None:
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


def _as_map(attributes: Any) -> Optional[Dict[str, str]]:
    if not attributes:
        return None
    return {a["Name"]: a.get("Value", "") for a in attributes}


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", "unknown error"))
    except (ValueError, AttributeError):
        return "unknown error"
