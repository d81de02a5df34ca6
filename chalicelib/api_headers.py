"""The headers every answer of the API carries, added in one place.

``app.py`` registers ``add_api_headers`` as the API's Chalice middleware, so
every route's answer gets them, its errors too: Chalice's own 405 and 415,
a view error (400, 404, 409, ...), an outage's 503 (``http_errors``), a
500. An answer that set one already keeps its own value: the pages and
their scripts (``pages``) are cached as they say, with their ETag.

- ``Cache-Control: no-store``: an answer holds a tenant's or an admin's
  data, fetched with their token; no browser or proxy keeps a copy for the
  next person at the same computer.
- ``X-Content-Type-Options: nosniff``: a JSON answer that echoes what a
  tenant typed is never run as a script or shown as a page.

API Gateway's own answers (401 from the authorizers, 403 and the like)
never reach the function: template.json gives them the same headers
(``x-amazon-apigateway-gateway-responses``), and the local stack's gateway
reads them from there (scripts/local/gateway.py). Nothing here is imported
but the standard library.
"""
from collections.abc import Callable
from typing import Any

API_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def add_api_headers(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice HTTP middleware: the answer, with each of API_HEADERS it lacks."""
    response = get_response(event)
    present = {name.lower() for name in response.headers}
    for name, value in API_HEADERS.items():
        if name.lower() not in present:
            response.headers[name] = value
    return response
