"""The README and docs/: short front page, every link resolves, every page reachable from the
index, the layout map covers the tree, the commands documented are the commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
# Pages other branches are adding in parallel: linked already, allowed to be absent until they
# land (and checked like every other page once they exist).
PARALLEL_PAGES = {
    "persistence.md",
    "moto-patches.md",
    "conformance.md",
    "security.md",
    "packaging.md",
    "objects.md",
}
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_the_readme_is_a_front_page_with_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < 10_000, "the README is a front page: details go to docs/"
    first_block = readme[: readme.index("\n## ")]
    assert "make dev" in first_block and "make test" in first_block


@pytest.mark.parametrize("page", [ROOT / "README.md", *PAGES], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in _links(page):
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if resolved.name in PARALLEL_PAGES and not resolved.exists():
            continue
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no heading for #{anchor}"


def test_every_page_is_in_the_index_and_the_readme() -> None:
    index = {Path(t.partition("#")[0]).name for t in _links(DOCS / "index.md")}
    readme = {Path(t.partition("#")[0]).name for t in _links(ROOT / "README.md")}
    pages = {p.name for p in PAGES if p.name != "index.md"} | PARALLEL_PAGES
    assert pages <= index, pages - index
    assert pages <= readme | {"index.md"}, pages - readme


def test_the_layout_map_names_every_package_of_the_tree() -> None:
    architecture = (DOCS / "architecture.md").read_text(encoding="utf-8")
    layout = architecture[architecture.index("## Layout") : architecture.index("## The embedded")]
    for folder in [*sorted((ROOT / "chalicelib").iterdir()), *sorted((ROOT / "payflow").iterdir())]:
        if folder.is_dir() and (folder / "__init__.py").exists():
            assert f"{folder.name}/" in layout, f"{folder.relative_to(ROOT)} is not in the map"


def test_every_payflow_command_is_documented() -> None:
    from payflow.cli import build_parser

    guide = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in commands:
        assert f"payflow {command}" in guide, command


def test_every_make_target_with_a_description_is_listed_by_make_help() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    described = set(re.findall(r"^## ([a-z-]+):", makefile, flags=re.M))
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    assert described <= targets
    assert {"help", "dev", "test", "chalice-local", "seed"} <= described
    assert re.search(r"^\.DEFAULT_GOAL := help$", makefile, flags=re.M)
