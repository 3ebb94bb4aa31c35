"""Where the files qstash-sim ships live: the contract (``openapi.yaml``) and the scenario library.

In the repository they sit at the top (``openapi.yaml``, ``scenarios/*.yaml``), beside the package folder
``simulator/``; a built wheel carries copies inside the package (``qstash_sim/openapi.yaml``,
``qstash_sim/scenarios/library/*.yaml``), put there by ``setup.py``'s build step. Both layouts are found
here, so an editable install and a wheel read the same files without symlinks.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["compiled_spec_files", "scenario_library", "spec_file"]

_PACKAGE = "qstash_sim"


def _package_dir() -> Traversable:
    return resources.files(_PACKAGE)


def _source_root() -> Path | None:
    """The repository root when running from a checkout (editable install), else ``None``."""
    here = Path(__file__).resolve().parent.parent  # .../simulator
    root = here.parent
    return root if (root / "openapi.yaml").is_file() and (root / "pyproject.toml").is_file() else None


def spec_file() -> Traversable:
    """The shipped ``openapi.yaml``."""
    packaged = _package_dir() / "openapi.yaml"
    if packaged.is_file():
        return packaged
    root = _source_root()
    if root is None:
        raise FileNotFoundError("openapi.yaml is not inside the qstash_sim package (a broken install?)")
    return root / "openapi.yaml"


def compiled_spec_files() -> tuple[Traversable | None, Path | None]:
    """Where the contract's compiled form may be: inside the package (a wheel: ``qstash_sim/openapi.json``,
    written by the build) and, in a checkout, ``build/qstash-sim/openapi.json`` (written on first use)."""
    packaged = _package_dir() / "openapi.json"
    root = _source_root()
    return (packaged if packaged.is_file() else None), (
        root / "build" / "qstash-sim" / "openapi.json" if root is not None else None
    )


def scenario_library() -> Traversable:
    """The folder of shipped scenario files (``*.yaml``)."""
    packaged = _package_dir() / "scenarios" / "library"
    if packaged.is_dir():
        return packaged
    root = _source_root()
    if root is None:
        raise FileNotFoundError("the scenario library is not inside the qstash_sim package (a broken install?)")
    return root / "scenarios"
