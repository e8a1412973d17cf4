"""The OpenAPI document of the API (generated: chalicelib/api/openapi.py) and a Swagger UI
page for it, served offline.

Swagger UI's files come from the ``swagger_ui_bundle`` package, imported only when an asset is
asked for: a deployment without it still serves /openapi.json, and /docs answers 404.
The page links its assets relatively (``docs/...``, ``openapi.json``) so it also works under an
API Gateway stage prefix, and it reads nothing from the current request.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Final

from chalice import Blueprint, Chalice, Response

from chalicelib.errors import ResourceMissing

docs = Blueprint(__name__)

_HTML: Final = "text/html; charset=utf-8"
_JS: Final = "text/javascript; charset=utf-8"
_CSS: Final = "text/css; charset=utf-8"
_JSON: Final = "application/json"

# Vendor files change only with the swagger-ui-bundle version; our own files with a deploy.
_CACHE_VENDOR: Final = "public, max-age=86400"
_CACHE_OWN: Final = "no-cache"

# The only vendor files served, by name: anything else is a 404, so no path reaches the disk.
# Favicons (PNG) and source maps are left out: PNG is a binary type in Chalice, which then
# requires a matching Accept header, and the maps are 1.5 MB each for devtools only.
_VENDOR_ASSETS: Final[dict[str, str]] = {
    "swagger-ui-bundle.js": _JS,
    "swagger-ui.css": _CSS,
    "index.css": _CSS,
}
_INITIALIZER: Final = "payflow-docs.js"

# The stock swagger-initializer.js points at the petstore demo; this one points at our document.
# validatorUrl: null stops Swagger UI from calling validator.swagger.io for its badge.
_INITIALIZER_JS: Final = """\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout",
  });
});
"""

# Relative URLs: from /docs, "docs/x" is /docs/x and "openapi.json" is /openapi.json.
_PAGE: Final = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>PayFlow API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="stylesheet" href="docs/index.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/payflow-docs.js"></script>
</body>
</html>
"""

# Same-origin only: the page can load nothing from a CDN even by accident. Swagger UI sets
# inline styles and uses data: URIs for its icons.
_PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@docs.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    """Serve the OpenAPI document of every route this app serves."""
    return Response(
        body=_openapi_text(docs.current_app),
        status_code=200,
        headers={"Content-Type": _JSON, "Cache-Control": _CACHE_OWN},
    )


@docs.route("/docs", methods=["GET"])
def docs_page() -> Response:
    """Serve the Swagger UI page, or 404 when swagger-ui-bundle is not installed."""
    if _swagger_ui_dir() is None:
        return _not_installed()
    return Response(
        body=_PAGE,
        status_code=200,
        headers={
            "Content-Type": _HTML,
            "Cache-Control": _CACHE_OWN,
            "Content-Security-Policy": _PAGE_CSP,
            "X-Content-Type-Options": "nosniff",
        },
    )


@docs.route("/docs/{asset}", methods=["GET"])
def docs_asset(asset: str) -> Response:
    """Serve one allow-listed Swagger UI asset."""
    if asset == _INITIALIZER:
        return _text(_INITIALIZER_JS, _JS, _CACHE_OWN)
    content_type = _VENDOR_ASSETS.get(asset)
    if content_type is None:
        return not_found(f"No such docs asset: '{asset}'", param="asset")
    directory = _swagger_ui_dir()
    if directory is None:
        return _not_installed()
    return _text(_vendor_text(directory, asset), content_type, _CACHE_VENDOR)


@functools.cache
def _openapi_text(app: Chalice) -> str:
    # Built once per process (the routes are fixed once the app is imported), and only when
    # asked for: no other Lambda entry point pays for the generator's imports.
    from chalicelib.api import openapi

    return json.dumps(openapi.document(app), separators=(",", ":"))


@functools.cache
def _swagger_ui_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


@functools.cache
def _vendor_text(directory: Path, name: str) -> str:
    return (directory / name).read_text(encoding="utf-8")


def _text(body: str, content_type: str, cache_control: str) -> Response:
    return Response(
        body=body,
        status_code=200,
        headers={
            "Content-Type": content_type,
            "Cache-Control": cache_control,
            "X-Content-Type-Options": "nosniff",
        },
    )


def _not_installed() -> Response:
    return not_found(
        "API docs are not available in this deployment: swagger-ui-bundle is not installed."
    )


def not_found(message: str, param: str | None = None) -> Response:
    """A Stripe-shaped 404 for a plain (non-JSON) route."""
    error = ResourceMissing(message, param=param)
    return Response(
        body=error.to_body(), status_code=error.http_status, headers={"Content-Type": _JSON}
    )
