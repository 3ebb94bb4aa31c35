"""Every way in for a scenario (file, control API, text, the CLI) refuses documents that would cost memory
or time: alias bombs, deep nesting, huge files, and non-UTF-8 files get a clean error naming the place."""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from conftest import Client
from qstash_sim.scenarios.loader import MAX_SCENARIO_BYTES, ScenarioError, load_scenario


def alias_bomb(levels: int) -> str:
    """``&a [x * 9]``, then each level nine aliases of the previous: 9**levels values from ~35 bytes a level."""
    names = "abcdefghijkl"
    doc = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    return doc + "".join(f"{names[i]}: &{names[i]} [{','.join(['*' + names[i - 1]] * 9)}]\n" for i in range(1, levels))


@pytest.mark.parametrize("levels", [7, 9])
def test_an_alias_bomb_is_refused_in_milliseconds_and_little_memory(levels: int) -> None:
    doc = alias_bomb(levels)
    assert len(doc) < 400
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="more than 20000 values"):
        load_scenario(doc)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 1024 * 1024, f"{peak} bytes"
    assert elapsed < 5, f"{elapsed:.2f} s"  # a generous bound on a loaded CI machine; it takes ~50 ms


@pytest.mark.parametrize("doc", ["[" * 100_000, "{b: " * 3000 + "1" + "}" * 3000], ids=["flow-list", "flow-map"])
def test_deep_nesting_is_a_scenario_error_not_a_recursion_error(doc: str) -> None:
    with pytest.raises(ScenarioError, match="nesting depth|nested more than"):
        load_scenario(doc + "\n")


def test_an_oversized_document_is_refused_before_parsing(tmp_path: Path) -> None:
    big = "# " + "x" * MAX_SCENARIO_BYTES + "\nname: big\n"
    with pytest.raises(ScenarioError, match="over the limit"):
        load_scenario(big)
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(ScenarioError, match=r"big\.yaml: .* bytes is over the limit"):
        load_scenario(path)


def test_a_non_utf8_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: ok\ndescription: café\n".encode("latin-1"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.errors == [
        f"{path}:2: not UTF-8 text (invalid continuation byte at byte 25); save the file as UTF-8"
    ]


def test_check_and_serve_report_a_non_utf8_file_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    for args in (["check", str(path)], ["serve", "--port", "0", "--scenario", str(path)]):
        res = subprocess.run([sys.executable, "-m", "qstash_sim", *args], capture_output=True, text=True, timeout=60)
        assert res.returncode in (1, 2), res
        assert "Traceback" not in res.stderr
        assert f"{path}:1: not UTF-8 text" in res.stderr


def test_the_control_api_answers_400_to_a_bomb_and_stays_responsive(client: Client) -> None:
    started = time.perf_counter()
    r = client.post("/_sim/scenarios", body=alias_bomb(9).encode())
    assert r.status == 400 and "more than 20000 values" in r.error
    assert client.get("/_sim/health").status == 200
    assert time.perf_counter() - started < 5
    deep = client.post("/_sim/scenarios", body=("[" * 100_000).encode())
    assert deep.status == 400 and "nesting depth" in deep.error
