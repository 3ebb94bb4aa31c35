"""The wheel carries openapi.yaml and the scenario library, found through importlib.resources."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_contract_and_scenarios_and_runs_from_it(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("qstash_sim-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    assert "simulator/openapi.yaml" in names
    assert "simulator/scenarios/flaky-destination.yaml" in names
    assert "simulator/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    # the extracted wheel alone (no repository on the path) compiles the contract and lists scenarios
    code = (
        "from simulator.contract import Contract; from simulator.http.app import build_app; "
        "from simulator.core import Simulator; import importlib.resources as r; "
        "c = Contract.load(); build_app(Simulator(), contract=c); "
        "print(len(c.operation_ids), sorted(p.name for p in (r.files('simulator') / 'scenarios').iterdir())[0])"
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
    assert first.endswith(".yaml")
