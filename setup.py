"""Build glue that pyproject.toml cannot express.

The repository keeps its agreed layout (``simulator/``, ``conftest_plugin/``, ``openapi.yaml`` and
``scenarios/`` at the top) and installs it under one import name, ``qstash_sim``:

* ``simulator/``        -> ``qstash_sim``               (every subpackage found below it)
* ``conftest_plugin/``  -> ``qstash_sim.pytest_plugin`` (the pytest plugin)
* ``openapi.yaml``      -> ``qstash_sim/openapi.yaml``  (copied at build time)
* ``scenarios/*.yaml``  -> ``qstash_sim/scenarios/library/`` (copied at build time)

An editable install maps the folders the same way and reads the two data locations from the checkout
(``qstash_sim.base.resources``).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _packages() -> tuple[list[str], dict[str, str]]:
    packages = ["qstash_sim", "qstash_sim.pytest_plugin"]
    for init in sorted((ROOT / "simulator").rglob("__init__.py")):
        rel = init.parent.relative_to(ROOT / "simulator")
        if rel.parts:
            packages.append(".".join(("qstash_sim", *rel.parts)))
    return packages, {"qstash_sim": "simulator", "qstash_sim.pytest_plugin": "conftest_plugin"}


class BuildWithData(build_py):
    """``build_py`` that also puts the contract and the scenario library inside the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        target = Path(self.build_lib) / "qstash_sim"
        shutil.copyfile(ROOT / "openapi.yaml", target / "openapi.yaml")
        # The contract's compiled form, read at start instead of parsing the YAML (qstash_sim.contract.load).
        spec = importlib.util.spec_from_file_location("_compiled", ROOT / "simulator" / "contract" / "compiled.py")
        assert spec is not None and spec.loader is not None
        compiled = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(compiled)
        (target / "openapi.json").write_bytes(compiled.compiled_form((ROOT / "openapi.yaml").read_bytes()))
        library = target / "scenarios" / "library"
        library.mkdir(parents=True, exist_ok=True)
        for source in sorted((ROOT / "scenarios").glob("*.yaml")):
            shutil.copyfile(source, library / source.name)


PACKAGES, PACKAGE_DIR = _packages()
setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "qstash_sim": ["py.typed"],
        "qstash_sim.scenarios": ["schema.json"],
        "qstash_sim.api.ui": ["static/*"],
        "qstash_sim.pytest_plugin": ["py.typed"],
    },
    cmdclass={"build_py": BuildWithData},
)
