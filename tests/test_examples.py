"""The downstream example suite (``examples/``) runs green, serially and under ``pytest -n 2``.

It runs in a subprocess from ``examples/`` so that it sees exactly what a user's project sees: its own
``pytest.ini``, the installed plugin, nothing from this repository's ``conftest.py``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(*args: str, quiet: bool = True) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONWARNINGS"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *(["-q"] if quiet else []), "-p", "no:cacheprovider", *args],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _summary(out: str) -> dict[str, int]:
    last = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    assert last, out
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last[-1])}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="serial"),
        pytest.param(
            ("-n", "2"),
            id="xdist",
            marks=pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist not installed"),
        ),
    ],
)
def test_examples_suite_passes(args: tuple[str, ...]) -> None:
    code, out = _run(*args)
    counts = _summary(out)
    assert code == 0, out
    assert counts.get("failed", 0) == 0 and counts.get("error", 0) == 0 and counts.get("errors", 0) == 0, out
    # all 5 example tests run and pass: none may be skipped or xfailed
    assert counts.get("passed", 0) == 5, out


def test_examples_suite_prints_the_seed_in_its_header() -> None:
    code, out = _run("--co", "--qstash-sim-seed=11", quiet=False)
    assert code == 0, out
    assert "qstash-sim: seed 11 (--qstash-sim-seed), scenario none" in out
