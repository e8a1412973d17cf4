"""payflow.js's own tests (clients/js/test, vitest) and its type check, run by the suite.

`make test` installs the locked tools (`npm ci` in clients/js) and builds payflow.js first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "js"
BIN = PACKAGE / "node_modules" / ".bin"


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    if not (BIN / tool).exists():
        pytest.fail(f"{BIN / tool} is missing: run `make test`, which installs clients/js's tools")
    return subprocess.run(
        [str(BIN / tool), *args], cwd=PACKAGE, capture_output=True, text=True, timeout=120
    )


def test_vitest_passes() -> None:
    done = _run("vitest", "run", "--reporter=dot")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def test_typescript_finds_no_error() -> None:
    done = _run("tsc", "--noEmit", "-p", ".")
    assert done.returncode == 0, done.stdout + done.stderr
