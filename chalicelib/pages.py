"""The sign-up page and the admin console: the files web/ builds, answered as built.

``make assets`` (web/build.mjs) writes them to ``chalicelib/assets/``: the
two HTML pages, their scripts and stylesheet (each named after its content's
hash) and ``manifest.json``, which names them. Only what the manifest names
is answered, so no request reaches another file of the package. The pages
talk to Cognito and to this API from the browser; nothing here calls AWS,
and this module imports nothing beyond the standard library until it
answers (Chalice's ``Response``, which ``app`` has already imported).

Caching: a hashed script or stylesheet never changes under its name, so it
is cached for a year (``immutable``); a page is revalidated every time
(``no-cache`` with an ETag), so a deploy's new page names its new files.
"""
import json
import os
from collections.abc import Mapping
from typing import Any

ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"

# What a page may load and talk to: its own files and this API ('self'), and
# the stage's Cognito: cognito-idp.<region>.amazonaws.com in AWS, the local
# stack's emulated Cognito (PUBLIC_COGNITO_ENDPOINT) locally, nothing else. No
# inline script or style, so markup that slipped into the page could not run;
# forms never submit by themselves (the scripts send what they hold, a
# password never goes into a URL).
def content_security_policy(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    cognito = [f"https://cognito-idp.{region}.amazonaws.com"]
    local = (environ.get("PUBLIC_COGNITO_ENDPOINT") or "").rstrip("/")
    if local:
        cognito.append(local)
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' " + " ".join(cognito),
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page_headers() -> dict[str, str]:
    return {**COMMON_HEADERS, "Content-Security-Policy": content_security_policy(),
            "X-Frame-Options": "DENY"}


_built: dict[str, tuple[str, str]] = {}  # file name -> (text, etag), read once per container
_manifest: dict[str, Any] | None = None


def page(name: str, if_none_match: str | None = None) -> Any:
    """GET /signup, GET /admin: the page named ``name`` in the manifest."""
    manifest = _read_manifest()
    if manifest is None:
        return _not_built()
    return _answer(manifest["pages"][name], PAGE_CACHE, page_headers(), if_none_match)


def asset(name: str, if_none_match: str | None = None) -> Any:
    """GET /assets/{name}: a built script or stylesheet; 404 for any other name."""
    manifest = _read_manifest()
    if manifest is None:
        return _not_built()
    if name not in manifest["assets"]:
        from chalice import NotFoundError

        raise NotFoundError("There is no such asset.")
    return _answer(name, ASSET_CACHE, COMMON_HEADERS, if_none_match)


def _answer(file_name: str, cache: str, headers: Mapping[str, str], if_none_match: str | None) -> Any:
    from chalice import Response

    text, etag = _read(file_name)
    answer_headers: dict[str, str | list[str]] = {**headers, "Cache-Control": cache, "ETag": etag}
    if if_none_match and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(body="", status_code=304, headers=answer_headers)
    answer_headers["Content-Type"] = CONTENT_TYPES[os.path.splitext(file_name)[1]]
    return Response(body=text, status_code=200, headers=answer_headers)


def _read(file_name: str) -> tuple[str, str]:
    if file_name not in _built:
        import hashlib

        with open(os.path.join(ASSETS_DIR, file_name), "rb") as built:
            raw = built.read()
        _built[file_name] = (raw.decode("utf-8"), f'"{hashlib.sha256(raw).hexdigest()[:32]}"')
    return _built[file_name]


def _read_manifest() -> dict[str, Any] | None:
    global _manifest
    if _manifest is None:
        try:
            with open(os.path.join(ASSETS_DIR, "manifest.json"), "rb") as built:
                _manifest = json.loads(built.read())
        except FileNotFoundError:
            return None
    return _manifest


def _not_built() -> Any:
    from chalice import Response

    return Response(
        body={
            "Code": "ServiceUnavailableError",
            "Message": "the pages are not built: run `make assets` (Node.js 20 and npm), then restart",
        },
        status_code=503,
        headers={"Content-Type": "application/json", **COMMON_HEADERS},
    )


def reset() -> None:
    """Forget what was read (tests that build the pages elsewhere)."""
    global _manifest
    _manifest = None
    _built.clear()
