"""/dashboard over HTTP: the built page and assets, and nothing else from the disk."""

from __future__ import annotations

from pathlib import Path

import requests

from chalicelib.api.dashboard import BUILD_DIR, built_files


def test_the_page_names_its_assets_relatively_and_allows_only_its_own_origin(api_url: str):
    response = requests.get(f"{api_url}/dashboard", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'src="dashboard/app.js"' in response.text
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp  # no CDN origin, even allowed


def test_built_assets_are_served_with_their_type(api_url: str):
    script = requests.get(f"{api_url}/dashboard/app.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert script.text == (BUILD_DIR / "app.js").read_text(encoding="utf-8")
    style = requests.get(f"{api_url}/dashboard/app.css", timeout=10)
    assert style.headers["Content-Type"].startswith("text/css")


def test_a_name_that_is_not_a_built_file_is_a_stripe_shaped_404(api_url: str):
    for name in ("nope.js", "..%2Fapp.py", "dashboard.py", "%2E%2E"):
        response = requests.get(f"{api_url}/dashboard/{name}", timeout=10)
        assert response.status_code == 404, name
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_an_unbuilt_folder_serves_nothing(tmp_path: Path):
    assert built_files(tmp_path / "missing") == {}
    (tmp_path / "app.js").write_text("x")
    (tmp_path / "secret.txt").write_text("no")
    assert set(built_files(tmp_path)) == {"app.js"}
