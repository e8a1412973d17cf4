"""The runnable examples of the README and docs/: every fenced block tagged `sh test` or
`python test` runs against the session's sandbox, so the docs cannot drift from what PayFlow
does.

The examples are written for `make dev`'s defaults; the test substitutes the sandbox's URL and a
fresh merchant's key for each block (so a block's routing or idempotency keys touch nothing
else), runs shell blocks under `set -euo pipefail` with curl failing on HTTP errors, and allows
no URL but 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, ROOT, new_merchant
from tests.integration.test_cli import _clean_environment

BLOCK = re.compile(r"^```(sh|python) test\n(.*?)^```", re.S | re.M)
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks() -> list[Any]:
    found = []
    for source in SOURCES:
        text = source.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text[: match.start()].count("\n") + 1
            found.append(
                pytest.param(match.group(1), match.group(2), id=f"{source.name}:{line}#{number}")
            )
    return found


EXAMPLES = _blocks()


def test_the_docs_have_runnable_examples() -> None:
    pages = {param.id.split(":")[0] for param in EXAMPLES}
    assert {"README.md", "getting-started.md", "ledger.md", "webhooks.md"} <= pages
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(("language", "code"), EXAMPLES)
def test_the_example_runs_against_the_sandbox(
    language: str, code: str, sandbox: Any, api_url: str, tmp_path: Path
) -> None:
    # Given the example with the sandbox's address and a merchant of its own
    merchant = new_merchant(api_url)
    code = (
        code.replace("http://127.0.0.1:8000", api_url)
        .replace("sk_test_payflow", merchant["secret_key"])
        .replace("sk_admin_payflow", ADMIN_KEY)
    )
    urls = re.findall(r"https?://[^\s\"'/]+", code)
    assert all(re.match(r"https?://127\.0\.0\.1(:\d+)?$", url) for url in urls), urls
    env = _clean_environment(
        PAYFLOW_API_BASE=api_url,
        AWS_ENDPOINT_URL=sandbox.aws_url,
        PAYFLOW_API_KEY=merchant["secret_key"],
        PAYFLOW_ADMIN_KEY=ADMIN_KEY,
        PAYFLOW_DATA_DIR=str(tmp_path),
        PATH=f"{Path(sys.executable).parent}:{_clean_environment().get('PATH', '')}",
    )

    # When
    if language == "sh":
        prelude = 'curl() { command curl -sS --fail-with-body "$@"; }\n'
        command = ["bash", "-euo", "pipefail", "-c", prelude + code]
    else:
        command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    # Then
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
