"""The local API's own answers, as template.json declares API Gateway's.

`chalice local` answers a path no route matches with 403 "Missing
Authentication Token", and, when the request carries an Authorization
header, with a 403 whose message repeats that whole header: a caller's ID
token, in a body any script on the page may read and any log may keep. And
http.server answers what it refuses before a route is looked for (a request
line over 64 KiB: 414; a header over 64 KiB or over 100 headers: 431; a
method it has no handler for: 501; a malformed request: 400) with an HTML
page.

``install`` puts a request handler in front of chalice local that answers:
- a path no route matches as template.json's MISSING_AUTHENTICATION_TOKEN
  gateway response says (404, ``{"Code": "NotFoundError", ...}``), which
  holds nothing of the request;
- http.server's refusals as JSON, ``{"Code", "Message"}`` with their status,
  saying nothing of the request either;
- every answer the gateway makes itself (these, and the authorizers' 401,
  scripts/local/auth.py) with the headers the template's gateway responses
  give (DEFAULT_4XX, DEFAULT_5XX: the API's own, chalicelib/api_headers.py).

What a deployed stage answers instead is in docs/local-stack.md.
"""
import functools
import json
from http import HTTPStatus
from typing import Any

from scripts.deploy.template import load_template
from scripts.local.auth import TokenCheck, checking_authorizer

UNKNOWN_ROUTE = "MISSING_AUTHENTICATION_TOKEN"  # API Gateway's response type for it
HEADER_PREFIX = "gatewayresponse.header."
# What http.server refuses before any route is looked for, said without
# repeating the request (its own messages quote the request line).
REFUSALS = {
    HTTPStatus.BAD_REQUEST: ("BadRequestError", "the request is not valid HTTP/1.1"),
    HTTPStatus.REQUEST_URI_TOO_LONG: (
        "UriTooLongError", "the request's URL is longer than 65,536 bytes"),
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: (
        "RequestHeaderFieldsTooLargeError",
        "a request header is longer than 65,536 bytes, or there are more than 100 of them"),
    HTTPStatus.NOT_IMPLEMENTED: (
        "NotImplementedError",
        "this API answers GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS only"),
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: (
        "HttpVersionNotSupportedError", "this API speaks HTTP/1.0 and HTTP/1.1"),
}


class GatewayResponses:
    """template.json's gateway responses (RestAPI's x-amazon-apigateway-gateway-responses)."""

    def __init__(self, template: dict[str, Any] | None = None) -> None:
        api = (template or load_template())["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
        self._responses: dict[str, Any] = api["x-amazon-apigateway-gateway-responses"]

    def headers(self, status: int, kind: str | None = None) -> dict[str, str]:
        """The headers of the gateway response ``kind``, or of DEFAULT_4XX/5XX."""
        response = self._responses.get(kind or "") or self._responses.get(
            "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX") or {}
        return {name[len(HEADER_PREFIX):]: value.strip("'")
                for name, value in response.get("responseParameters", {}).items()
                if name.startswith(HEADER_PREFIX)}

    def unknown_route(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the answer to a path no route matches."""
        response = self._responses[UNKNOWN_ROUTE]
        status = int(response["statusCode"])
        body = response["responseTemplates"]["application/json"].encode()
        return status, {"Content-Type": "application/json", **self.headers(status, UNKNOWN_ROUTE)}, body

    def refusal(self, status: int) -> tuple[dict[str, str], bytes]:
        """Headers and JSON body of http.server's refusal with ``status``."""
        code, message = REFUSALS.get(HTTPStatus(status), ("HttpError", HTTPStatus(status).phrase))
        body = json.dumps({"Code": code, "Message": message}).encode()
        return {"Content-Type": "application/json", **self.headers(status)}, body


def install(server: Any, app_object: Any, config: Any, check: TokenCheck) -> None:
    """Put the gateway's answers and the token check in front of a chalice local server."""
    from http.server import BaseHTTPRequestHandler

    from chalice.local import ChaliceRequestHandler, LocalGateway, LocalGatewayException

    responses = GatewayResponses()

    class RoutingGateway(LocalGateway):
        def _generate_lambda_event(self, method: str, path: str, headers: Any, body: Any) -> Any:
            try:
                return super()._generate_lambda_event(method, path, headers, body)
            except ValueError:  # no route matches the path
                status, answer_headers, answer = responses.unknown_route()
                error = LocalGatewayException(answer_headers, answer)
                error.CODE = status
                raise error from None

    class LocalApiHandler(ChaliceRequestHandler):
        def __init__(self, request: Any, client_address: Any, http_server: Any,
                     app_object: Any, config: Any) -> None:
            self.local_gateway = RoutingGateway(app_object, config)
            self.local_gateway._authorizer = checking_authorizer(app_object, check)
            BaseHTTPRequestHandler.__init__(self, request, client_address, http_server)

        def _send_error_response(self, error: Any) -> None:
            error.headers = {**responses.headers(error.CODE), **error.headers}
            super()._send_error_response(error)

        def send_error(self, code: int, message: str | None = None,
                       explain: str | None = None) -> None:
            """http.server's refusals, as JSON rather than its HTML page."""
            headers, body = responses.refusal(code)
            self.log_error("code %d, message %s", code, message)
            self.send_response(code)
            for name, value in {**headers, "Connection": "close",
                                "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    server.server.RequestHandlerClass = functools.partial(
        LocalApiHandler, app_object=app_object, config=config)
