"""The wheel carries openapi.yaml and the scenario library, found through importlib.resources."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_contract_and_scenarios_and_runs_from_it(tmp_path: Path, built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    assert "qstash_sim/openapi.yaml" in names
    assert "qstash_sim/scenarios/library/flaky-destination.yaml" in names
    assert "qstash_sim/scenarios/schema.json" in names
    assert "qstash_sim/py.typed" in names
    assert "qstash_sim/pytest_plugin/plugin.py" in names
    # one import name: nothing generic lands in the user's site-packages
    assert {n.split("/", 1)[0] for n in names if "/" in n and ".dist-info/" not in n} == {"qstash_sim"}
    assert any(n.endswith("entry_points.txt") for n in names)
    # the extracted wheel alone (no repository on the path) compiles the contract and lists scenarios
    code = (
        "from qstash_sim import Simulator; from qstash_sim.contract.router import Contract; "
        "from qstash_sim.http.aiohttp_app import build_app; "
        "from qstash_sim.scenarios.runtime import shipped_scenarios; "
        "from qstash_sim.api import default_surfaces; c = Contract.load(); build_app(Simulator(), default_surfaces()); "
        "print(len(c.operation_ids), sorted(shipped_scenarios())[0])"
    )
    res = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    count, first = res.stdout.split()
    assert int(count) >= 18
    assert first == "burst-rate-limit"


def test_every_declared_floor_is_pinned_in_constraints_floors() -> None:
    """pyproject's ``>=`` bounds and constraints/floors.txt name the same packages at the same versions."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    declared: dict[str, str] = {}
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        m = re.match(r"([A-Za-z0-9_.-]+)\s*(?:>=|==)\s*([\w.]+)", spec)
        assert m, f"{spec!r}: every dependency declares a floor (>=), or is pinned (==, the SDKs driven end to end)"
        declared[m.group(1).lower()] = m.group(2)
    pinned = dict(
        line.split("==")
        for line in (ROOT / "constraints" / "floors.txt").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert declared == {k.lower(): v for k, v in pinned.items()}
