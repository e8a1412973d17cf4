"""How the developer commands find the sandbox: flags, environment, state file, defaults."""

from __future__ import annotations

import json
from pathlib import Path

from payflow.locate import Endpoints, data_dir, find, read_state


def test_defaults_are_the_sandbox_defaults(tmp_path: Path) -> None:
    # Given nothing configured (and no state file)
    environ = {"PAYFLOW_DATA_DIR": str(tmp_path)}

    # When / Then
    assert find(environ) == Endpoints("http://127.0.0.1:8000", "http://127.0.0.1:4566")


def test_ports_come_from_the_environment(tmp_path: Path) -> None:
    environ = {"PAYFLOW_DATA_DIR": str(tmp_path), "PAYFLOW_PORT": "18000"}
    environ["PAYFLOW_AWS_PORT"] = "14566"
    assert find(environ) == Endpoints("http://127.0.0.1:18000", "http://127.0.0.1:14566")


def test_the_state_file_is_read_when_the_environment_says_nothing(tmp_path: Path) -> None:
    # Given a running sandbox's state file
    (tmp_path / "sandbox.json").write_text(
        json.dumps({"api_url": "http://127.0.0.1:9100", "aws_port": 9101})
    )
    environ = {"PAYFLOW_DATA_DIR": str(tmp_path)}

    # When / Then: urls and ports both understood
    assert find(environ) == Endpoints("http://127.0.0.1:9100", "http://127.0.0.1:9101")
    # and the environment still wins over it, flags over both
    assert find({**environ, "PAYFLOW_PORT": "9200"}).api_url == "http://127.0.0.1:9200"
    assert find(environ, aws_url="http://127.0.0.1:1/").aws_url == "http://127.0.0.1:1"


def test_a_broken_or_missing_state_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "sandbox.json").write_text("{not json")
    assert read_state({"PAYFLOW_DATA_DIR": str(tmp_path)}) == {}
    assert read_state({"PAYFLOW_DATA_DIR": str(tmp_path / "absent")}) == {}
    assert find({"PAYFLOW_DATA_DIR": str(tmp_path)}).api_url == "http://127.0.0.1:8000"


def test_the_data_directory_defaults_to_dot_payflow_in_the_checkout() -> None:
    assert data_dir({}).name == ".payflow"
    assert data_dir({}).parent == Path(__file__).resolve().parents[2]
