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
- mails a confirmation code on SignUp and ResendConfirmationCode (which moto
  lacks: answered here), and a
  temporary password on AdminCreateUser (unless SUPPRESSed), and checks the
  code on ConfirmSignUp: CodeMismatchException for a wrong one,
  ExpiredCodeException once it is older than its lifetime (24 hours; the
  code of a later resend replaces it);
- names the user's attributes in a NEW_PASSWORD_REQUIRED challenge, as
  Cognito does (userAttributes, requiredAttributes).
This module reproduces that. No email leaves the machine: each message goes
to the outbox (``.local/outbox.jsonl`` for the local stack), one JSON object
a message: ``to``, ``subject``, ``code`` or ``temporaryPassword``, ``sentAt``.
"""
import json
import logging
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.signup import CONFIRM_SIGN_UP

logger = logging.getLogger("local.cognito")

# LocalCognito's own calls carry this header, and go to moto unchanged.
INTERNAL_HEADER = "X-Local-Cognito"
MAX_ATTRIBUTE_VALUE_LENGTH = 2048
WITH_USER_ATTRIBUTES = (
    "SignUp", "AdminCreateUser", "AdminUpdateUserAttributes", "UpdateUserAttributes"
)
CREATES_USER = ("SignUp", "AdminCreateUser")
CONFIRMS = ("ConfirmSignUp", "AdminConfirmSignUp")
CODE_LIFETIME_SECONDS = 24 * 3600  # Cognito's, for a sign-up confirmation code
# Checked and done under one lock, so two concurrent calls cannot both pass.
CHANGES_USER_STATE = CREATES_USER + CONFIRMS + ("ResendConfirmationCode",)


class CognitoError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LocalCognito:
    def __init__(
        self,
        cognito_client: Any,
        invoke: Any,
        outbox: Callable[[dict[str, Any]], None] = lambda message: None,
        code_lifetime_seconds: float = CODE_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``invoke(function_arn, payload_bytes) -> (function_error, payload)``;
        ``outbox(message)`` receives every message Cognito would mail."""
        self._cognito = cognito_client
        self._invoke = invoke
        self._outbox = outbox
        self._code_lifetime = code_lifetime_seconds
        self._clock = clock
        self._codes: dict[Any, Any] = {}  # (pool id, username) -> (code, expires at)
        self._pool_ids: dict[str, str] = {}  # client id -> pool id; a client never moves
        service = cognito_client.meta.service_model.service_id.hyphenize()
        cognito_client.meta.events.register(f"before-sign.{service}", _mark_internal)

    def before(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Refuse what Cognito would refuse; return the request to hand to moto
        (naming the user as moto knows it)."""
        if operation in WITH_USER_ATTRIBUTES:
            _refuse_long_attribute_values(request)
        username = request.get("Username")
        pool = self._pool_of(request) if isinstance(username, str) else None
        if pool is None or not isinstance(username, str):
            return request  # let moto answer
        if operation in CREATES_USER:
            if operation == "SignUp":
                _refuse_missing_required_attributes(pool, request)
            if request.get("MessageAction") != "RESEND":
                self._refuse_existing_username(pool, username)
                self._run_pre_sign_up(pool, operation, request)
            if operation == "AdminCreateUser" and not request.get("TemporaryPassword"):
                return {**request, "TemporaryPassword": temporary_password(pool)}
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
        if operation == "ConfirmSignUp":
            self._check_code((pool["Id"], user["Username"]), str(request.get("ConfirmationCode", "")))
        if username in _names_of(user, pool):
            return request
        return {**request, "Username": user["Username"]}

    def _run_pre_sign_up(self, pool: dict[str, Any], operation: str, request: dict[str, Any]) -> None:
        """Cognito's PreSignUp trigger: its error refuses the sign-up, with its message."""
        trigger = (pool.get("LambdaConfig") or {}).get("PreSignUp")
        if not trigger:
            return
        attributes = {a["Name"]: a.get("Value", "") for a in request.get("UserAttributes") or []}
        if "email" in pool.get("UsernameAttributes", []):
            attributes.setdefault("email", request["Username"])
        self._run_trigger(
            "PreSignUp", trigger, pool["Id"], request["Username"], request, f"PreSignUp_{operation}",
            {"userAttributes": attributes,
             "validationData": _as_map(request.get("ValidationData"))},
            {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
        )

    def _run_trigger(
        self, kind: str, trigger: str, pool_id: str, user_name: str, call: dict[str, Any],
        source: str, event_request: dict[str, Any], event_response: dict[str, Any],
    ) -> None:
        """Invoke a trigger with the event Cognito sends it; the trigger's error
        refuses ``call`` with its message, as Cognito does."""
        event = {
            "version": "1",
            "region": self._cognito.meta.region_name,
            "userPoolId": pool_id,
            "userName": user_name,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown",
                              "clientId": call.get("ClientId", "CLIENT_ID_NOT_APPLICABLE")},
            "triggerSource": source,
            "request": event_request,
            "response": event_response,
        }
        error, payload = self._invoke(trigger, json.dumps(event).encode())
        if error:
            raise CognitoError(
                "UserLambdaValidationException",
                f"{kind} failed with error {_error_message(payload)}.",
            )

    def answer(self, operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """Operations moto does not have, answered here; None for moto's own."""
        if operation != "ResendConfirmationCode":
            return None
        pool = self._pool_of(request)
        user = self._user_named(pool, request.get("Username", "")) if pool else None
        if user is None:
            raise CognitoError("UserNotFoundException", "Username/client id combination not found.")
        if user.get("UserStatus") != "UNCONFIRMED":
            raise CognitoError("InvalidParameterException", "User is already confirmed.")
        self._send_code(request)
        email = str(request["Username"])
        return {"CodeDeliveryDetails": {"Destination": f"{email[:1]}***@{email.split('@')[-1][:1]}***",
                                        "DeliveryMedium": "EMAIL", "AttributeName": "email"}}

    def amend(self, operation: str, request: dict[str, Any], body: bytes) -> bytes:
        """moto's answer, completed as Cognito's: a NEW_PASSWORD_REQUIRED challenge
        names the user's attributes and the required ones (amazon-cognito-identity-js
        reads both)."""
        if operation not in ("InitiateAuth", "AdminInitiateAuth", "RespondToAuthChallenge"):
            return body
        try:
            answer = json.loads(body)
        except ValueError:
            return body
        if answer.get("ChallengeName") != "NEW_PASSWORD_REQUIRED":
            return body
        username = ((request.get("AuthParameters") or {}).get("USERNAME")
                    or (request.get("ChallengeResponses") or {}).get("USERNAME"))
        pool = self._pool_of(request)
        user = self._user_named(pool, username) if pool and username else None
        attributes = {a["Name"]: a["Value"] for a in (user or {}).get("UserAttributes", [])
                      if a["Name"] != "sub"}
        answer["ChallengeParameters"] = {
            **answer.get("ChallengeParameters", {}),
            "USER_ID_FOR_SRP": (user or {}).get("Username", username or ""),
            "userAttributes": json.dumps(attributes),
            "requiredAttributes": "[]",
        }
        return json.dumps(answer).encode()

    def after(self, operation: str, request: dict[str, Any]) -> None:
        """What Cognito does once moto has done ``operation``."""
        if operation in CONFIRMS:
            self._codes.pop(self._code_key(request), None)  # a code is good once
            self.after_confirm(request, admin=operation == "AdminConfirmSignUp")
        elif operation == "SignUp":
            self._send_code(request)
        elif operation == "AdminCreateUser" and request.get("MessageAction") != "SUPPRESS":
            self._mail(request["Username"], "Your temporary password",
                       temporaryPassword=request["TemporaryPassword"])

    # --- messages: codes and temporary passwords -------------------------------------
    def _code_key(self, request: dict[str, Any]) -> Any:
        """(pool id, the user's own username): whatever name the call gave it."""
        pool = self._pool_of(request) or {}
        user = self._user_named(pool, request["Username"]) if pool else None
        return (pool.get("Id"), user["Username"] if user else request["Username"])

    def _send_code(self, request: dict[str, Any]) -> None:
        code = f"{secrets.randbelow(10 ** 6):06d}"
        self._codes[self._code_key(request)] = (code, self._clock() + self._code_lifetime)
        self._mail(request["Username"], "Your verification code", code=code)

    def _check_code(self, key: Any, given: str) -> None:
        sent = self._codes.get(key)
        if sent is None or not secrets.compare_digest(sent[0], given):
            raise CognitoError("CodeMismatchException",
                               "Invalid verification code provided, please try again.")
        if self._clock() >= sent[1]:
            raise CognitoError("ExpiredCodeException",
                               "Invalid code provided, please request a code again.")

    def _mail(self, to: str, subject: str, **content: str) -> None:
        sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        self._outbox({"to": to, "subject": subject, **content, "sentAt": sent_at})

    def _pool_of(self, request: dict[str, Any]) -> dict[str, Any] | None:
        pool_id = request.get("UserPoolId") or self._pool_of_client(request.get("ClientId", ""))
        if not pool_id:
            return None
        try:
            return self._cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        except ClientError:
            return None

    def _user_named(self, pool: dict[str, Any], username: str) -> dict[str, Any] | None:
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

    def _refuse_existing_username(self, pool: dict[str, Any], username: str) -> None:
        if not _case_insensitive(pool):
            return  # moto refuses an exact duplicate itself
        if self._user_named(pool, username) is None:
            return
        if "email" in pool.get("UsernameAttributes", []) and "@" in username:
            raise CognitoError(
                "UsernameExistsException", "An account with the given email already exists."
            )
        raise CognitoError("UsernameExistsException", "User already exists")

    def after_confirm(self, request: dict[str, Any], admin: bool) -> None:
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
        logger.info("PostConfirmation trigger for user %s", user["Username"])
        self._run_trigger("PostConfirmation", trigger, pool_id, user["Username"], request,
                          CONFIRM_SIGN_UP, {"userAttributes": attributes}, {})

    def _pool_of_client(self, client_id: str) -> str | None:
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


def temporary_password(pool: dict[str, Any]) -> str:
    """One the pool's password policy accepts: every character class, long enough."""
    policy = (pool.get("Policies") or {}).get("PasswordPolicy") or {}
    length = max(int(policy.get("MinimumLength", 8)), 12)
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(length - 4))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(
        string.ascii_lowercase) + secrets.choice(string.digits) + "!"


def _mark_internal(request: Any, **_: Any) -> None:
    request.headers[INTERNAL_HEADER] = "1"


def _case_insensitive(pool: dict[str, Any]) -> bool:
    """As the pool says; Cognito's default, without UsernameConfiguration, is case-sensitive."""
    return (pool.get("UsernameConfiguration") or {}).get("CaseSensitive") is False


def _names_of(user: dict[str, Any], pool: dict[str, Any]) -> list[str]:
    """What a user can be named by: its username and its username attributes (email)."""
    attributes = user.get("UserAttributes") or user.get("Attributes") or []
    aliases = set(pool.get("UsernameAttributes", []))
    return [user["Username"]] + [a["Value"] for a in attributes if a["Name"] in aliases]


def _refuse_long_attribute_values(request: dict[str, Any]) -> None:
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


def _refuse_missing_required_attributes(pool: dict[str, Any], request: dict[str, Any]) -> None:
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


def _as_map(attributes: Any) -> dict[str, str] | None:
    if not attributes:
        return None
    return {a["Name"]: a.get("Value", "") for a in attributes}


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("errorMessage", "unknown error"))
    except (ValueError, AttributeError):
        return "unknown error"
