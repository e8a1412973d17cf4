"""The one moto version the sandbox runs on.

moto_fixes.py, moto_speedups.py, timewarp.py and persistence.py replace or read private parts
of moto (11 attributes and the shape of its backends): on another version they could break
quietly, or a snapshot could be misread. pyproject.toml pins the same version.
"""

from __future__ import annotations

from importlib import metadata

MOTO_VERSION = "5.2.5"


class MotoVersionError(RuntimeError):
    """The installed moto is not the one the sandbox's patches were written against."""


def check_moto_version(installed: str | None = None) -> None:
    """Raise MotoVersionError, with a one-line way out, unless moto is `MOTO_VERSION`."""
    if installed is None:
        try:
            installed = metadata.version("moto")
        except metadata.PackageNotFoundError:
            installed = "none"
    if installed != MOTO_VERSION:
        raise MotoVersionError(
            f"moto {installed} is installed, the sandbox needs exactly moto {MOTO_VERSION} "
            f"(its patches are written against it): run `pip install -e '.[dev]'`"
        )
