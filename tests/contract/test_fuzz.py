"""Contract fuzzing: schemathesis generates requests for every operation of openapi.yaml and checks each
answer of a running ``qstash-sim serve`` with all its checks, its default (no 5xx, status codes and content
types documented, response schemas conform, schema-valid requests accepted, invalid ones rejected, auth...;
only ``max_response_time``, which needs a limit, is off). The checks are chosen by the generated
``schemathesis.toml``, not by ``--checks all``, which would override its per-operation settings.

The default run is short and seeded (``--max-examples 5 --seed 1``, a few seconds); ``make fuzz`` sets
``QSTASH_SIM_FUZZ=full`` for >= 1,000 cases per run over several seeds. Both tolerate no failure at all.

Every operation is fuzzed with every check, with one exception written in ``openapi.yaml`` itself: an
operation marked ``x-positive-data-acceptance: false`` (``POST /_sim/scenarios``, whose body is scenario
text validated by its own schema, not by a JSON Schema schemathesis could generate valid data from) is not
held to "schema-valid data is accepted"; every other check still applies to it.

Loopback only: the server binds 127.0.0.1 and destinations outside loopback are virtual.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("QSTASH_SIM_FUZZ", "").lower() in ("1", "full", "yes")
SEEDS = (1, 2, 3) if FULL else (1,)
MAX_EXAMPLES = 30 if FULL else 5
MIN_CASES = 1000 if FULL else 300  # per seed
API_KEY = "fuzz-key"

KNOWN_EXCLUDED: dict[str, str] = {}  # operationId -> why it is not fuzzed (none: keep it that way)


@dataclass(frozen=True, slots=True)
class Known:
    """A failure already reported: where (operation regex), which check, what the answer says, and why."""

    operation: str
    code: str
    answer: str  # regex on the answer's text ("" = any)
    why: str


KNOWN: tuple[Known, ...] = ()  # failures tolerated by the short run: none (keep it that way)


def _schemathesis_config(path: Path) -> Path:
    """A schemathesis.toml turning off "valid data accepted" where openapi.yaml says it cannot apply."""
    import yaml

    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text("utf-8"))
    ids = [
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and op.get("x-positive-data-acceptance") is False
    ]
    # Unknown headers and query parameters are not errors here (QStash ignores them; the simulator warns):
    # schemathesis must not send them as "invalid" data expecting a 4xx.
    text = "[generation]\nallow-extra-parameters = false\n\n"
    text += "".join(
        f'[[operations]]\ninclude-operation-id = "{i}"\nchecks.positive_data_acceptance.enabled = false\n\n'
        for i in ids
    )
    # Operations whose valid input may be refused by a documented, state-dependent limit.
    extra = {
        op["operationId"]: op["x-valid-data-statuses"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and op.get("x-valid-data-statuses")
    }
    defaults = ["2xx", "3xx", "401", "403", "404", "409", "429"]  # schemathesis defaults, less 5xx
    text += "".join(
        f'[[operations]]\ninclude-operation-id = "{i}"\n'
        f"checks.positive_data_acceptance.expected-statuses = "
        f"{[*defaults, *(str(x) for x in statuses)]!r}\n\n".replace("'", '"')
        for i, statuses in extra.items()
    )
    # Where schemathesis is wrong, narrowly: /v1/qstash/schedules/{scheduleId} (GET, DELETE) and the greedy
    # /v1/qstash/schedules/{destination} (POST) overlap. Its ST204 sends POST to the first template, expects
    # 405, and gets the schedule creation's 400 ("invalid destination url"): POST is declared on the same
    # path, as the second template; QStash answers it the same way (finding L6).
    text += "".join(
        f'[[operations]]\ninclude-operation-id = "{i}"\nchecks.unsupported_method.enabled = false\n\n'
        for i in ("getSchedule", "deleteSchedule")
    )
    path.write_text(text)
    return path


def _cases(output: str) -> list[tuple[str, set[str], str]]:
    """(operation, check codes, text) for each failing test case in schemathesis' report."""
    out = []
    for section in re.split(r"\n(?=_{3,} [A-Z]+ /)", output):
        m = re.match(r"_{3,} ([A-Z]+ \S+) _{3,}", section)
        if m is None:
            continue
        for case in re.split(r"\n(?=\d+\. Test Case ID)", section)[1:]:
            out.append((m.group(1), set(re.findall(r"- (ST\d+) ", case)) or {"error"}, case))
    return out


def _known(operation: str, codes: set[str], text: str) -> Known | None:
    for k in KNOWN:
        if (
            re.fullmatch(k.operation, operation)
            and all(re.fullmatch(k.code, c) for c in codes)
            and re.search(k.answer, text)
        ):
            return k
    return None


def _env() -> dict[str, str]:
    """Our environment without pytest's markers: with PYTEST_VERSION set, schemathesis' run is ~10x slower."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # our formats (e.g. upstash-retry-delay) get valid-value strategies from tests/contract/fuzz_hooks.py
    env["SCHEMATHESIS_HOOKS"] = "fuzz_hooks"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests" / "contract"), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """A ``qstash-sim serve`` subprocess on 127.0.0.1 (virtual clock; /v1/transactions needs ``fuzz-key``)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qstash_sim",
            "serve",
            "--port",
            "0",
            "--clock",
            "virtual",
            "--seed",
            "1",
            "--log-level",
            "error",
            "--api-key",
            API_KEY,
            # fuzzed advances may cross schedules other cases created: keep each one well inside the timeout
            "--max-advance-events",
            "20000",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server prints its address once bound
    m = re.search(r"running at (http://127\.0\.0\.1:\d+)", line)
    if m is None:
        proc.kill()
        pytest.fail(f"the server did not start: {line!r}")
    # Keep draining its output, so that a chatty server never blocks on a full pipe.
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


@pytest.mark.skipif(
    shutil.which("schemathesis") is None and not (Path(sys.executable).parent / "schemathesis").exists(),
    reason="schemathesis is not installed (pip install -e '.[test]')",
)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_operation_answers_as_documented(base_url: str, seed: int, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "schemathesis"
    config = _schemathesis_config(tmp_path / "schemathesis.toml")
    argv = [
        str(exe) if exe.exists() else "schemathesis",
        "--config-file",
        str(config),
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        base_url,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        "--generation-database",
        "none",
        "--header",
        f"x-api-key: {API_KEY}",
        *(arg for op in KNOWN_EXCLUDED for arg in ("--exclude-operation-id", op)),
    ]
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(
            argv,
            check=False,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900 if FULL else 180,
            env=_env(),
        )
        log.seek(0)
        output = log.read()
    generated = re.search(r"^ *(\d+) generated", output, re.MULTILINE)  # anchored: the output has 8 KB runs of digits
    assert generated is not None, output[-3000:]
    assert int(generated.group(1)) >= MIN_CASES, f"only {generated.group(1)} cases generated"
    assert "Network Error" not in output, "a request timed out or the connection failed:\n" + output[-3000:]
    failures = _cases(output)
    if FULL:
        assert not failures, "\n\n".join(text[:1500] for _, _, text in failures)
        assert done.returncode == 0, output[-3000:]
        return
    unknown = [(op, codes, text) for op, codes, text in failures if _known(op, codes, text) is None]
    assert not unknown, "new contract failures:\n\n" + "\n\n".join(
        f"{op} {sorted(codes)}\n{text[:1500]}" for op, codes, text in unknown
    )
    if done.returncode != 0:
        assert failures, "schemathesis failed without a failing case:\n" + output[-3000:]
