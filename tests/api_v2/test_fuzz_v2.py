"""Contract fuzzing of the native QStash surface (``qstash.*`` operations of openapi.yaml): schemathesis, in
positive mode (schema-valid requests: every check, valid data accepted) and negative mode (schema-violating
requests must be refused with a 4xx), against a real ``qstash-sim serve`` started with ``--token fuzz-key``
(so that a made-up token is refused, as schemathesis' auth checks expect). Zero failures tolerated.

The same settings as ``tests/contract/test_fuzz.py`` (which fuzzes every other operation): seeded and
deterministic, one worker, a small budget per operation (``QSTASH_SIM_FUZZ=full``: more seeds, more cases).
Where schemathesis judges one path template alone although two overlap, it is told so, narrowly (``WRONG``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("QSTASH_SIM_FUZZ", "").lower() in ("1", "full", "yes")
SEEDS = (1, 2, 3) if FULL else (1,)
BUDGET = 25 if FULL else 4
MIN_CASES = 1000
TOKEN = "fuzz-key"
EXE = Path(sys.executable).parent / "schemathesis"

# (operationIds, setting, why): where schemathesis is wrong about this surface.
WRONG: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("qstash.getSchedule", "qstash.deleteSchedule", "qstash.createSchedule"),
        "checks.unsupported_method.enabled = false\nchecks.allow_header_conformance.enabled = false",
        "/v2/schedules/<x> is both {scheduleId} (GET, DELETE) and the greedy {destination} (POST): its Allow "
        "names all three, and a POST there is a schedule creation (for the URL group <x>)",
    ),
    (
        ("qstash.retryDlqMessages", "qstash.getDlqMessage", "qstash.deleteDlqMessage"),
        "checks.unsupported_method.enabled = false\nchecks.allow_header_conformance.enabled = false",
        "/v2/dlq/retry is the literal POST and also {dlqId} (GET, DELETE; 'retry' is then a malformed id, "
        "400): its Allow names the three, and a GET there is no 405",
    ),
    (
        ("qstash.publish", "qstash.enqueue", "qstash.createSchedule"),
        "generation.allow-extra-parameters = false",
        "on the greedy destination routes an extra header or query parameter is data (forwarded, or the "
        "destination's own query string), not an error",
    ),
)


def _config(path: Path) -> Path:
    tables: dict[str, list[str]] = {}
    for ids, setting, why in WRONG:
        for i in ids:
            tables.setdefault(i, []).append(f"# {why}\n{setting}\n")
    text = "[generation]\nallow-extra-parameters = true\n\n" + "".join(
        f'[[operations]]\ninclude-operation-id = "{i}"\n' + "".join(lines) + "\n" for i, lines in tables.items()
    )
    path.write_text(text)
    return path


def _cases(output: str) -> list[tuple[str, str]]:
    out = []
    for section in re.split(r"\n(?=_{3,} [A-Z]+ /)", output):
        m = re.match(r"_{3,} ([A-Z]+ \S+) _{3,}", section)
        if m is not None:
            out.extend((m.group(1), case) for case in re.split(r"\n(?=\d+\. Test Case ID)", section)[1:])
    return out


def _short(text: str) -> str:
    return re.sub(r"(.)\1{40,}", lambda m: m.group(1) * 8 + f"<...{len(m.group(0))} x {m.group(1)!r}>", text)[:2500]


@pytest.fixture
def base_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_sim", "serve", "--port", "0", "--clock", "virtual", "--seed", "1",
         "--log-level", "error", "--token", TOKEN, "--max-advance-events", "20000"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    m = re.search(r"running at (http://127\.0\.0\.1:\d+)", proc.stdout.readline())
    if m is None:
        proc.kill()
        pytest.fail("the server did not start")
    drain = threading.Thread(target=proc.stdout.read, daemon=True)
    drain.start()
    yield m.group(1)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    drain.join(10)
    proc.stdout.close()


@pytest.mark.skipif(not EXE.exists() and shutil.which("schemathesis") is None, reason="schemathesis is not installed")
@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("seed", SEEDS)
def test_every_v2_operation_answers_as_documented(base_url: str, seed: int, mode: str, tmp_path: Path) -> None:
    argv = [
        str(EXE) if EXE.exists() else "schemathesis",
        "--config-file", str(_config(tmp_path / "schemathesis.toml")),
        "run", str(ROOT / "openapi.yaml"),
        "--url", base_url,
        "--mode", mode,
        "--max-examples", str(BUDGET),
        "--seed", str(seed),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "10",
        "--no-color",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--include-operation-id-regex", r"^qstash\..*$",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # else ~10x slower
    env["SCHEMATHESIS_HOOKS"] = "fuzz_hooks"  # tests/contract/fuzz_hooks.py: valid Upstash-Retry-Delay values
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests" / "contract"), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(
            argv, check=False, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL, timeout=1800 if FULL else 420, env=env,
        )  # fmt: skip
        log.seek(0)
        output = log.read()
    generated = re.search(r"^ *(\d+) generated", output, re.MULTILINE)
    assert generated is not None, _short(output[-3000:])
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text("utf-8"))
    expected = sum(
        1 for item in spec["paths"].values() for op in item.values()
        if isinstance(op, dict) and str(op.get("operationId", "")).startswith("qstash.")
    )  # fmt: skip
    tested = re.search(r"^ *Tested: (\d+)", output, re.MULTILINE)
    assert tested is not None and int(tested.group(1)) == expected, _short(output[-3000:])
    assert int(generated.group(1)) >= MIN_CASES, f"only {generated.group(1)} cases generated"
    assert "Network Error" not in output, _short(output[-3000:])
    failures = _cases(output)
    assert not failures, f"{len(failures)} failures ({mode}, seed {seed}):\n\n" + "\n\n".join(
        f"{op}\n{_short(text)}" for op, text in failures
    )
    assert done.returncode == 0, _short(output[-3000:])
