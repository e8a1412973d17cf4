"""/dashboard: the merchant dashboard's page and assets, built from dashboard/ by `make`.

The front end (TypeScript, Vite) builds into chalicelib/static/dashboard/, inside the Lambda
package, so the same files are served by the sandbox and on AWS, and nothing is fetched at run
time. Assets are served by name from that folder's listing: a name that is not a built file is a
404, so no request path reaches the disk. The page links its assets relatively
(``dashboard/app.js``) and the scripts call the API relative to the page, so it also works under
an API Gateway stage prefix.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from chalice import Blueprint, Response

from chalicelib.errors import ResourceMissing

dashboard = Blueprint(__name__)

BUILD_DIR: Final = Path(__file__).resolve().parents[1] / "static" / "dashboard"

_CONTENT_TYPES: Final[dict[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}

# The build's names are fixed (app.js, app.css): each deploy must be fetched afresh.
_CACHE: Final = "no-cache"

# Same-origin only: no CDN, not even by accident. uPlot sizes its canvas with inline styles.
_PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@dashboard.route("/dashboard", methods=["GET"])
def dashboard_page() -> Response:
    """Serve the dashboard's page (a 404 naming the build step when it was not built)."""
    return _asset("index.html")


@dashboard.route("/dashboard/{asset}", methods=["GET"])
def dashboard_asset(asset: str) -> Response:
    """Serve one built asset by name."""
    return _asset(asset)


def _asset(name: str) -> Response:
    files = built_files(BUILD_DIR)
    if not files:
        return _not_found(
            "The dashboard is not built in this deployment: run `make dev` or `make package`, "
            "which build dashboard/ first."
        )
    if name not in files:
        return _not_found(f"No such dashboard asset: '{name}'", param="asset")
    body, content_type = files[name]
    headers: dict[str, str | list[str]] = {
        "Content-Type": content_type,
        "Cache-Control": _CACHE,
        "X-Content-Type-Options": "nosniff",
    }
    if name == "index.html":
        headers["Content-Security-Policy"] = _PAGE_CSP
        headers["Referrer-Policy"] = "no-referrer"
    return Response(body=body, status_code=200, headers=headers)


@functools.cache
def built_files(directory: Path) -> dict[str, tuple[str, str]]:
    """Name -> (text, content type) of every servable file of the build, read once per process.

    Empty when the folder does not exist (an unbuilt checkout); other file types are left out.
    """
    if not directory.is_dir():
        return {}
    return {
        path.name: (path.read_text(encoding="utf-8"), _CONTENT_TYPES[path.suffix])
        for path in sorted(directory.iterdir())
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }


def _not_found(message: str, param: str | None = None) -> Response:
    error = ResourceMissing(message, param=param)
    return Response(
        body=error.to_body(),
        status_code=error.http_status,
        headers={"Content-Type": "application/json"},
    )
