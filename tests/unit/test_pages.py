"""chalicelib/pages.py through the app's routes (GET /signup, /admin, /assets/{name}),
against a small built set of its own: what the manifest names is answered
with its type and caching, anything else is 404, a missing build says how
to make it."""
import json
import subprocess
import sys

import pytest
from chalice.test import Client

from chalicelib import pages
from tests.support import PROJECT_DIR


@pytest.fixture
def built(tmp_path, monkeypatch):
    (tmp_path / "signup.html").write_text('<!doctype html><script src="assets/signup-AB12.js"></script>')
    (tmp_path / "admin.html").write_text("<!doctype html><title>Admin console</title>")
    (tmp_path / "signup-AB12.js").write_text("console.log('sign up… ✓')")
    (tmp_path / "style-CD34.css").write_text("body{margin:0}")
    (tmp_path / "manifest.json").write_text(json.dumps({
        "pages": {"signup": "signup.html", "admin": "admin.html"},
        "assets": ["signup-AB12.js", "style-CD34.css"],
    }))
    monkeypatch.setattr(pages, "ASSETS_DIR", str(tmp_path))
    pages.reset()
    yield tmp_path
    pages.reset()


@pytest.fixture
def client():
    from app import app

    with Client(app) as client:
        yield client


def test_the_sign_up_page_is_html_revalidated_every_time_and_locked_down(built, client):
    response = client.http.get("/signup")

    assert response.status_code == 200
    assert response.body.decode() == (built / "signup.html").read_text()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "form-action 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_admin_console_is_its_own_page(built, client):
    response = client.http.get("/admin")

    assert response.status_code == 200
    assert b"Admin console" in response.body


def test_a_page_not_changed_since_answers_304(built, client):
    etag = client.http.get("/signup").headers["ETag"]

    again = client.http.get("/signup", headers={"If-None-Match": etag})

    assert again.status_code == 304
    assert again.body in (b"", None)
    assert again.headers["Cache-Control"] == "no-cache"  # the page's own, not the API's no-store
    assert client.http.get("/signup", headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_built_script_is_javascript_cached_for_good(built, client):
    response = client.http.get("/assets/signup-AB12.js")

    assert response.status_code == 200
    assert response.body.decode("utf-8") == "console.log('sign up… ✓')"
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    css = client.http.get("/assets/style-CD34.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize("name", [
    "manifest.json", "signup.html", "nope.js", "signup-AB12.js.map", "..%2Fpages.py",
    "%2e%2e%2f%2e%2e%2fapp.py", "SIGNUP-AB12.JS",
])
def test_a_name_the_build_did_not_make_is_404(built, client, name):
    response = client.http.get(f"/assets/{name}")

    assert response.status_code == 404
    assert json.loads(response.body) == {"Code": "NotFoundError", "Message": "There is no such asset."}
    assert response.headers["Cache-Control"] == "no-store"  # the API's, as every JSON answer
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_without_a_build_the_pages_say_how_to_make_one(tmp_path, monkeypatch, client):
    monkeypatch.setattr(pages, "ASSETS_DIR", str(tmp_path / "missing"))
    pages.reset()
    try:
        for path in ("/signup", "/admin", "/assets/signup-AB12.js"):
            response = client.http.get(path)
            assert response.status_code == 503
            assert "make assets" in json.loads(response.body)["Message"]
    finally:
        pages.reset()


def test_importing_the_pages_costs_nothing_but_the_standard_library():
    probe = (
        "import sys; before = set(sys.modules); import chalicelib.pages; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, check=True,
                            capture_output=True, text=True).stdout.split()

    heavy = [m for m in loaded if m.split(".")[0] in ("boto3", "botocore", "chalice", "stripe", "requests")]
    assert heavy == []


def test_the_pages_may_talk_to_the_stages_cognito_and_nothing_else():
    from chalicelib.pages import content_security_policy

    in_aws = content_security_policy({"AWS_REGION": "eu-west-1"})
    local = content_security_policy({"AWS_REGION": "us-east-1",
                                     "PUBLIC_COGNITO_ENDPOINT": "http://127.0.0.1:4566/"})

    assert "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com;" in in_aws
    assert "127.0.0.1" not in in_aws and "*" not in in_aws
    assert "connect-src 'self' https://cognito-idp.us-east-1.amazonaws.com http://127.0.0.1:4566;" in local
