"""API Gateway's Cognito authorizers, enforced by the local API as in AWS.

`chalice local` decodes a Cognito token without checking it (and admits a
request with none). API Gateway checks the ID token's signature against the
pool's keys, its issuer (the pool the route's authorizer names), its use
(``id``) and its expiry, and answers 401 ``{"message":"Unauthorized"}``
otherwise. ``checking_authorizer`` makes the local API do the same, with
the emulated pools' keys (moto signs every token with one key pair), and
hands the route the checked claims as API Gateway does, without chalice
local's warning that Cognito authorizers are "not supported in local mode"
(the stack logs once that every token is checked instead).
"""
import time
from typing import Any

UNAUTHORIZED = b'{"message":"Unauthorized"}'


class TokenCheck:
    """Is this the ID token of a user of the pool the authorizer names?"""

    def __init__(self, pools: dict[str, str], region: str) -> None:
        """``pools``: authorizer name (app.py) -> user pool id."""
        from joserfc import jwk
        from moto.utilities.utils import load_resource

        self._issuers = {name: f"https://cognito-idp.{region}.amazonaws.com/{pool}"
                         for name, pool in pools.items()}
        self._keys = jwk.KeySet.import_key_set(
            load_resource("cognitoidp/resources/jwks-public.json"))

    def claims(self, token: str | None, authorizer: str) -> dict[str, Any] | None:
        """The token's claims when API Gateway would accept it; None otherwise."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        if not token or authorizer not in self._issuers:
            return None
        try:
            decoded = jwt.decode(token, self._keys, algorithms=["RS256"])
        except (JoseError, ValueError):
            return None
        claims = decoded.claims
        if (claims.get("iss") != self._issuers[authorizer] or claims.get("token_use") != "id"
                or not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time()):
            return None
        return claims


def checking_authorizer(app_object: Any, check: TokenCheck) -> Any:
    """chalice local's authorizer, made to check Cognito tokens before any route
    runs (scripts/local/gateway.py installs it)."""
    from chalice.app import CognitoUserPoolAuthorizer
    from chalice.local import LocalGatewayAuthorizer, NotAuthorizedError

    class CheckingAuthorizer(LocalGatewayAuthorizer):
        def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
            route = self._route_for_event(lambda_event)
            authorizer = route.authorizer if route else None
            if isinstance(authorizer, CognitoUserPoolAuthorizer):
                headers = {k.lower(): v for k, v in (lambda_event.get("headers") or {}).items()}
                claims = check.claims(headers.get("authorization"), authorizer.name)
                if claims is None:
                    raise NotAuthorizedError(
                        {"x-amzn-RequestId": lambda_context.aws_request_id,
                         "x-amzn-ErrorType": "UnauthorizedException",
                         "Content-Type": "application/json"},
                        UNAUTHORIZED,
                    )
                # what API Gateway hands the function: the claims it checked
                accepted = {"context": {"claims": claims},
                            "principalId": claims.get("cognito:username")}
                return self._update_lambda_event(lambda_event, accepted), lambda_context
            return super().authorize(raw_path, lambda_event, lambda_context)

    return CheckingAuthorizer(app_object)
