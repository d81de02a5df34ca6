"""Every answer of the API is kept by no cache and sniffed by no browser:
``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff`` on every
route's answer, its errors too (a view error, Chalice's own 405 and 415, an
outage's 503); the pages keep their own caching (tests/unit/test_pages.py)."""
import json

import pytest

from chalicelib.api_headers import API_HEADERS
from tests.support.faults import unreachable
from tests.support.stage import app_client

UNKNOWN_TENANT = "00000000-0000-4000-8000-999999999999"
JSON = {"Content-Type": "application/json"}


def assert_api_headers(response):
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert headers.get("cache-control") == "no-store", (response.status_code, response.headers)
    assert headers.get("x-content-type-options") == "nosniff", (response.status_code, response.headers)


ANSWERS = {
    "a listing (200)": ("GET", "/tenants?status=onboarding", None, JSON, 200),
    "the public config (200)": ("GET", "/config", None, {}, 200),
    "a bad query (400)": ("GET", "/tenants?status=nope", None, {}, 400),
    "an unknown tenant (404)": ("GET", f"/tenants/{UNKNOWN_TENANT}", None, {}, 404),
    "a decision no one waits for (404)": (
        "POST", f"/tenants/{UNKNOWN_TENANT}/decision", '{"status": "approved"}', JSON, 404),
    "a bad finalize body (400)": ("POST", "/tenant/finalize", "[]", JSON, 400),
    "a body too large (413)": (
        "POST", "/tenant/finalize", json.dumps({"reason": "x" * 20_000}), JSON, 413),
    "a method the route lacks (405)": ("DELETE", "/tenants", None, {}, 405),
    "a content type the route refuses (415)": (
        "POST", "/tenant/finalize", "a=b", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
}


@pytest.mark.parametrize("method, path, body, headers, status", list(ANSWERS.values()), ids=list(ANSWERS))
def test_every_answer_carries_no_store_and_nosniff(client, method, path, body, headers, status):
    response = client.http.request(method, path, headers=headers, body=body)

    assert response.status_code == status, response.body
    assert_api_headers(response)


def test_an_outage_answer_carries_them_beside_retry_after(stage, client):
    unreachable(app_client("dynamodb"), "dynamodb.Query", 10, "read timeout")

    response = client.http.get("/tenants?status=onboarding")

    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert_api_headers(response)


def test_an_answer_that_sets_its_own_caching_keeps_it():
    from chalice import Response

    from chalicelib.api_headers import add_api_headers

    response = add_api_headers(None, lambda _: Response(
        body="", headers={"cache-control": "public, max-age=60"}))

    assert response.headers["cache-control"] == "public, max-age=60"
    assert "Cache-Control" not in response.headers
    assert response.headers["X-Content-Type-Options"] == API_HEADERS["X-Content-Type-Options"]
