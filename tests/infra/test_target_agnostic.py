"""Handler code never branches on the target it runs on (embedded sandbox, LocalStack, AWS).

What counts as branching on the target, checked over the code (not comments or docstrings) of
app.py and chalicelib/:

- importing what only one target has: moto, localstack, localstack_client, or payflow (the
  dev-only package holding the sandbox and the deploy tooling);
- naming a target or its endpoint: identifiers or strings containing "localstack", "moto",
  "AWS_ENDPOINT_URL", "4566", "endpoint_url";
- reading the environment anywhere but chalicelib/settings.py: every difference between targets
  must be a setting, read once into the one settings model, so it is visible and documented.

What does not count: a policy setting such as PAYFLOW_SANDBOX (whether webhook endpoints may be
private or plain-HTTP URLs). It is configuration the deployer chooses, read in settings.py like
any other, and the code path is the same on every target; it never asks where it runs.
boto3 finds AWS_ENDPOINT_URL by itself, which is how the sandbox and LocalStack redirect the
unchanged code.
"""

from __future__ import annotations

import ast
from pathlib import Path

from payflow.deploy.package import REPO_ROOT

FILES = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "chalicelib").rglob("*.py"))]
FORBIDDEN_IMPORTS = {"moto", "localstack", "localstack_client", "payflow"}
FORBIDDEN_WORDS = ("localstack", "moto", "aws_endpoint_url", "4566", "endpoint_url")
SETTINGS = REPO_ROOT / "chalicelib" / "settings.py"


def code_names_and_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Identifiers, attribute names and string constants, docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append((node.lineno, node.name))
    return found


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO_ROOT)}:{line}"


def test_the_checked_files_exist() -> None:
    assert len(FILES) > 10


def test_no_import_of_a_target_specific_package() -> None:
    offending = []
    for path in FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            offending += [
                f"{where(path, node.lineno)} imports {m}"
                for m in modules
                if m.split(".")[0] in FORBIDDEN_IMPORTS
            ]
    assert offending == []


def test_no_code_names_a_target_or_its_endpoint() -> None:
    offending = []
    for path in FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text in code_names_and_strings(tree):
            lowered = text.lower()
            offending += [
                f"{where(path, line)}: {text[:60]!r}" for w in FORBIDDEN_WORDS if w in lowered
            ]
    assert offending == []


def test_only_settings_reads_the_environment() -> None:
    offending = []
    for path in FILES:
        if path == SETTINGS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offending += [
            f"{where(path, line)} uses {name}"
            for line, name in code_names_and_strings(tree)
            if name in ("environ", "getenv", "putenv")
        ]
    assert offending == []


def test_the_checks_see_a_branch_on_the_target() -> None:
    tree = ast.parse(
        "import os\nif os.environ.get('AWS_ENDPOINT_URL'):\n    url = 'http://localhost:4566'\n"
    )
    found = [text for _, text in code_names_and_strings(tree)]

    assert "environ" in found
    assert "AWS_ENDPOINT_URL" in found
    assert "http://localhost:4566" in found
