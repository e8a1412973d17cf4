"""One package for the infra checks: `chalice package` of this repository, merged with infra/.

The requirements are left out of deployment.zip (the template does not depend on them), so the
fixture needs no network and takes about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from payflow.deploy.package import REPO_ROOT, Package, package


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return package(tmp_path_factory.mktemp("build"), stage="dev", app_only=True)


@pytest.fixture(scope="session")
def template(built: Package) -> dict[str, Any]:
    return built.template()


@pytest.fixture(scope="session")
def resources() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "infra" / "resources.json").read_text())


@pytest.fixture(scope="session")
def environment() -> dict[str, Any]:
    data = json.loads((REPO_ROOT / "infra" / "environment.json").read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


@pytest.fixture(scope="session")
def drift(built: Package) -> dict[str, Any]:
    """What moto's CloudFormation and the sandbox's provisioning create (see drift_probe)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_ENDPOINT_URL", "PAYFLOW_", "MOTO_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.infra.drift_probe", str(built.directory), str(REPO_ROOT)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the drift probe failed:\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def of_type(template: dict[str, Any], *kinds: str) -> dict[str, Any]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] in kinds}


def repo_path(relative: str) -> Path:
    return REPO_ROOT / relative
