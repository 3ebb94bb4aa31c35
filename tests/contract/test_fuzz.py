"""Contract fuzzing: schemathesis generates requests for the operations of openapi.yaml and checks each answer
of a running ``qstash-sim serve``, in two runs per seed:

* **positive** (``--mode positive``): schema-valid requests, every check on (no 5xx, status codes, content
  types, response headers and schemas as documented, valid data accepted, ``Allow`` on 405, auth, ...;
  only ``max_response_time``, which needs a limit, is off);
* **negative** (``--mode negative``): schema-violating requests, each of which must be refused with a 4xx
  (``negative_data_rejection``), the other checks still on.

Both tolerate no failure. The default run (``make test``) is one seed with a small budget per operation and
mode (``BUDGET``: the fuzzing phase's examples; the coverage phase, which is most of the cases, walks every
schema once whatever the budget; its positive run has no fuzzing phase, ``PHASES``); ``make fuzz`` sets
``QSTASH_SIM_FUZZ=full`` for several seeds and a
larger budget. ``MIN_CASES`` is the floor of cases per run (seed and mode): a run that generated fewer tested
too little. Every run is deterministic: a fixed ``--seed``, ``--generation-deterministic`` (no example
database, no random variation), one worker, and a fresh ``qstash-sim serve`` of its own (seed 1, virtual
clock; ``tests/serve_proc.py``), called with ``x-api-key: fuzz-key`` (/v1) and ``Authorization: Bearer
fuzz-key`` (/v2, which accepts that token only, so schemathesis' made-up tokens get their 401).

Operations: every operation of openapi.yaml (/v1, the native QStash /v2, the ``/_sim`` control plane);
``NOT_FUZZED`` stays empty (``test_every_operation_is_fuzzed``). The test checks that schemathesis tested
exactly that many.

Where schemathesis is wrong, it is told so narrowly in the generated ``schemathesis.toml`` (each exclusion
with its reason, below, in ``_schemathesis_config``); two exclusions are written in openapi.yaml itself
(``x-positive-data-acceptance: false`` on ``POST /_sim/scenarios``, whose body is scenario text checked by
its own schema; ``x-valid-data-statuses`` where valid input meets a documented, state-dependent limit),
and two kinds of failure are dropped by ``filter_failure`` in ``tests/contract/fuzz_hooks.py`` (each
explained there: what schemathesis sends but did not generate, and an excuse of its own that misfires).

Loopback only: the server binds 127.0.0.1 and destinations outside loopback are virtual.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

import serve_proc

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("QSTASH_SIM_FUZZ", "").lower() in ("1", "full", "yes")
SEEDS = (1, 2, 3) if FULL else (1,)
MODES = ("positive", "negative")
BUDGET = 25 if FULL else 4  # --max-examples: cases per operation and phase
# The default positive run skips the fuzzing phase (~1.4 s an operation of hypothesis set-up, 3 minutes over
# 121 operations): its coverage phase walks every schema; the negative run and make fuzz keep every phase.
PHASES = {} if FULL else {"positive": "examples,coverage,stateful"}
# cases per run (seed and mode), a floor below what each generates (the default run, ~100 operations: about 2,200
# positive and 5,700 negative; full: about 4,400 and 8,800): a run that generated fewer tested too little
MIN_CASES = {"positive": 3000, "negative": 6000} if FULL else {"positive": 1500, "negative": 4000}
API_KEY = "fuzz-key"

# operationIds (full regexes) not fuzzed, each with its reason: none (an operation openapi.yaml grows is fuzzed)
NOT_FUZZED: tuple[str, ...] = ()


@functools.cache
def _spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there: the pure-Python one takes seconds
    spec: dict[str, Any] = yaml.load((ROOT / "openapi.yaml").read_text("utf-8"), Loader=loader)  # noqa: S506
    return spec


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        op for item in spec["paths"].values() for op in item.values() if isinstance(op, dict) and "operationId" in op
    ]


def fuzzed(operation_id: str) -> bool:
    return not any(re.fullmatch(rx, operation_id) for rx in NOT_FUZZED)


# Where schemathesis is wrong, narrowly: (operationIds, a setting of their [[operations]] table, why).
#
# /v1/qstash/schedules/{scheduleId} (GET, DELETE) and the greedy /v1/qstash/schedules/{destination} (POST)
# overlap: /schedules/000 is a URL of both (a POST there is a schedule creation with a bad destination, 400,
# as QStash answers: finding L6; a GET there is getSchedule), so that URL takes DELETE, GET and POST, and a
# 405 there says "Allow: DELETE, GET, POST" (RFC 9110, 10.2.1: the methods the target resource supports).
# schemathesis judges each template alone: it sends POST to {scheduleId} and GET to {destination} expecting
# 405 (ST204), and reads the other template's methods in Allow as undocumented (ST205).
#
# An extra header is data, not an error, on the greedy destination routes (publish, enqueue, schedule
# creation): HTTP recipients ignore fields they do not know (RFC 9110, 5.1), QStash and the simulator accept
# it and, with Upstash-Header-Forward: true, forward it to the destination; and there the query string
# belongs to the destination. schemathesis flagged a schedule creation carrying an extra x-... header:
# its negation of the destination path had produced a URL the gateway rightly accepts (the spec's pattern
# was narrower than the gateway; fixed) and a negated path turns off its own "only extra parameters, not
# invalid" excuse. These routes take raw bytes, so no body check is lost.
#
# /v2 has the same overlap (/v2/schedules/<x>: qstash.getSchedule, qstash.deleteSchedule and the greedy
# qstash.createSchedule) and one more: /v2/dlq/retry is the literal qstash.retryDlqMessages (POST) and also
# /v2/dlq/{dlqId} (qstash.getDlqMessage, qstash.deleteDlqMessage: "retry" is then a malformed id, 400), so its
# Allow names DELETE, GET and POST, and a GET there is no 405. The workflow DLQ repeats it: /v2/workflows/dlq/resume
# and /restart (POST) are also /v2/workflows/dlq/{dlqId} (GET, DELETE).
OVERLAP = ("getSchedule", "deleteSchedule", "createSchedule")
OVERLAP_V2 = ("qstash.getSchedule", "qstash.deleteSchedule", "qstash.createSchedule")
OVERLAP_DLQ = ("qstash.retryDlqMessages", "qstash.getDlqMessage", "qstash.deleteDlqMessage")
OVERLAP_WF_DLQ = (
    "qstash.workflowDlqResume",
    "qstash.workflowDlqRestart",
    "qstash.workflowDlqGet",
    "qstash.workflowDlqDelete",
)
GREEDY = ("publishMessage", "enqueueMessage", "createSchedule")
WRONG: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (OVERLAP, "checks.unsupported_method.enabled = false", "ST204: overlapping templates, see WRONG"),
    (OVERLAP, "checks.allow_header_conformance.enabled = false", "ST205: overlapping templates, see WRONG"),
    (GREEDY, "generation.allow-extra-parameters = false", "an extra header or query parameter is valid here"),
    (OVERLAP_V2, "checks.unsupported_method.enabled = false", "ST204: overlapping /v2 templates, see WRONG"),
    (OVERLAP_V2, "checks.allow_header_conformance.enabled = false", "ST205: overlapping /v2 templates, see WRONG"),
    (OVERLAP_DLQ, "checks.unsupported_method.enabled = false", "ST204: /v2/dlq/retry is two templates, see WRONG"),
    (OVERLAP_DLQ, "checks.allow_header_conformance.enabled = false", "ST205: /v2/dlq/retry, see WRONG"),
    (OVERLAP_WF_DLQ, "checks.unsupported_method.enabled = false", "ST204: /v2/workflows/dlq/resume, see WRONG"),
    (OVERLAP_WF_DLQ, "checks.allow_header_conformance.enabled = false", "ST205: /v2/workflows/dlq/resume, see WRONG"),
)


def _schemathesis_config(path: Path, mode: str) -> Path:
    """The schemathesis.toml of a run: what openapi.yaml says about itself, then ``WRONG``; one table per
    operation."""
    tables: dict[str, list[str]] = {}

    def add(ids: list[str] | tuple[str, ...], setting: str, why: str) -> None:
        for i in ids:
            tables.setdefault(i, []).append(f"# {why}\n{setting}\n")

    ops = _operations(_spec())
    add(
        [op["operationId"] for op in ops if op.get("x-positive-data-acceptance") is False],
        "checks.positive_data_acceptance.enabled = false",
        "openapi.yaml: x-positive-data-acceptance: false (a body checked by its own schema, not a JSON Schema)",
    )
    defaults = ["2xx", "3xx", "401", "403", "404", "409", "429"]  # schemathesis' defaults, less 5xx
    for op in ops:
        if op.get("x-valid-data-statuses"):
            statuses = [*defaults, *(str(s) for s in op["x-valid-data-statuses"])]
            add(
                [op["operationId"]],
                "checks.positive_data_acceptance.expected-statuses = [" + ", ".join(f'"{s}"' for s in statuses) + "]",
                "openapi.yaml: x-valid-data-statuses (valid input may meet a documented, state-dependent limit)",
            )
    for ids, setting, why in WRONG:
        add(ids, setting, why)
    # Undeclared properties are generated as invalid data: a JSON body's unknown property must be refused
    # (additionalProperties: false; 400); an extra query parameter or header alone is not counted as invalid.
    text = "[generation]\nallow-extra-parameters = true\n\n"
    if mode == "positive":
        # The coverage phase's requests with an undeclared method (405 and its Allow: ST204, ST205) do not
        # depend on the mode: the negative run sends them, the positive one does not send them again.
        text += "[phases.coverage]\nunexpected-methods = []\n\n"
    text += "".join(
        f'[[operations]]\ninclude-operation-id = "{i}"\n' + "".join(lines) + "\n" for i, lines in tables.items()
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


def _short(text: str) -> str:
    """A failure's text with schemathesis' long runs of one character cut (its values reach 8 KB)."""
    return re.sub(r"(.)\1{40,}", lambda m: m.group(1) * 8 + f"<...{len(m.group(0))} x {m.group(1)!r}>", text)[:2500]


def _env() -> dict[str, str]:
    """Our environment without pytest's markers: with PYTEST_VERSION set, schemathesis' run is ~10x slower."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # our formats (e.g. upstash-retry-delay) get valid-value strategies from tests/contract/fuzz_hooks.py
    env["SCHEMATHESIS_HOOKS"] = "fuzz_hooks"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "tests" / "contract"), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def base_url() -> Iterator[str]:
    """A fresh ``qstash-sim serve`` subprocess on 127.0.0.1 per run (virtual clock, seed 1; ``fuzz-key`` is the
    only token /v2 accepts, so that schemathesis' made-up ones are refused, and /v1/transactions' key), so
    that every run starts from the same state whatever ran before."""
    options = ("--seed", "1", "--log-level", "error", "--api-key", API_KEY, "--token", API_KEY)
    # fuzzed advances may cross schedules other cases created: keep each one well inside the timeout
    with serve_proc.serve(*options, "--max-advance-events", "20000") as server:
        yield server.url


def _hooks() -> Any:
    """tests/contract/fuzz_hooks.py, as schemathesis loads it (SCHEMATHESIS_HOOKS)."""
    sys.path.insert(0, str(ROOT / "tests" / "contract"))
    try:
        import fuzz_hooks
    finally:
        sys.path.pop(0)
    return fuzz_hooks


def test_every_operation_is_fuzzed() -> None:
    """Whatever openapi.yaml grows, every operation of every surface (/v1, /v2, /_sim) is fuzzed."""
    ids = [op["operationId"] for op in _operations(_spec())]
    assert NOT_FUZZED == () and all(map(fuzzed, ids))
    assert {"publishMessage", "createTransaction", "simReset", "qstash.publish", "qstash.batch"} <= set(ids)
    assert {i for ids_, _, _ in WRONG for i in ids_} <= set(ids)  # no exclusion outlives its operation


@pytest.mark.parametrize(
    ("code", "template", "sent", "kept"),
    [
        # the destination as sent decodes to a control character: schemathesis' serialization, dropped
        ("ST202", "/v1/qstash/publish/{destination}", "https%3A%2F%2Fa.com%2Fx%10", False),
        ("ST202", "/v1/qstash/enqueue/{queueName}/{destination}", "https%3A%2F%2Fa.com%2F%EF%BF%BD", False),
        # a destination the grammar admits, refused: the gateway's fault, kept
        ("ST202", "/v1/qstash/publish/{destination}", "https%3A%2F%2Fa.com%2Fx%2510", True),
        ("ST202", "/v1/qstash/schedules/{destination}", "https://a.com/x?y=1", True),
        # /v2: the same, and a URL-group name is admitted too
        ("ST202", "/v2/publish/{destination}", "HtTP%3A%2F%2Fa.com%2FOt%EF%BF%BD", False),
        ("ST202", "/v2/publish/{destination}", "my-group", True),
        ("ST202", "/v1/qstash/publish/{destination}", "my-group", False),
        # anything else is kept
        ("ST201", "/v1/qstash/publish/{destination}", "https%3A%2F%2Fa.com%2Fx%10", True),
        ("ST202", "/v1/qstash/messages/{messageId}", "x%10", True),
    ],
)
def test_the_one_dropped_failure_is_narrow(code: str, template: str, sent: str, kept: bool) -> None:
    fuzz_hooks = _hooks()
    path = re.sub(r"\{queueName\}", "q1", template).replace("{destination}", sent).replace("{messageId}", sent)
    failure = SimpleNamespace(code=code)
    case = SimpleNamespace(operation=SimpleNamespace(path=template))
    response = SimpleNamespace(request=SimpleNamespace(url=f"http://127.0.0.1:8080{path}"))
    assert fuzz_hooks.filter_failure(None, failure, case, response) is kept


@pytest.mark.parametrize(
    ("code", "scenario", "location", "kept"),
    [
        ("ST201", "object_unexpected_properties", "query", False),  # only an extra parameter: dropped
        ("ST201", "object_unexpected_properties", "header", False),
        ("ST201", "object_unexpected_properties", "body", True),  # an unknown JSON property must be refused
        ("ST201", "string_above_max_length", "query", True),
        ("ST202", "object_unexpected_properties", "query", True),
    ],
)
def test_an_extra_parameter_alone_is_no_violation(code: str, scenario: str, location: str, kept: bool) -> None:
    fuzz_hooks = _hooks()
    data = SimpleNamespace(scenario=scenario, parameter_location=SimpleNamespace(value=location))
    case = SimpleNamespace(meta=SimpleNamespace(phase=SimpleNamespace(data=data)), operation=SimpleNamespace(path="/x"))
    response = SimpleNamespace(request=SimpleNamespace(url="http://127.0.0.1:8080/x"))
    assert fuzz_hooks.filter_failure(None, SimpleNamespace(code=code), case, response) is kept


@pytest.mark.skipif(
    shutil.which("schemathesis") is None and not (Path(sys.executable).parent / "schemathesis").exists(),
    reason="schemathesis is not installed (pip install -e '.[test]')",
)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_operation_answers_as_documented(base_url: str, seed: int, mode: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "schemathesis"
    config = _schemathesis_config(tmp_path / "schemathesis.toml", mode)
    expected = sum(fuzzed(op["operationId"]) for op in _operations(_spec()))
    argv = [
        str(exe) if exe.exists() else "schemathesis",
        "--config-file",
        str(config),
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        base_url,
        "--mode",
        mode,
        "--max-examples",
        str(BUDGET),
        *(("--phases", PHASES[mode]) if mode in PHASES else ()),
        "--seed",
        str(seed),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        # Hypothesis' too_slow check is about the generator, not the server: the workflow DLQ's bulk actions
        # (17 query parameters, patterns among them) generate slowly and would abort their fuzzing phase.
        "--suppress-health-check=too_slow",
        "--no-color",
        "--header",
        f"x-api-key: {API_KEY}",  # /v1 (Sapiom's key)
        "--header",
        f"Authorization: Bearer {API_KEY}",  # /v2 (QStash's token; the server accepts only it: --token)
        *(("--exclude-operation-id-regex", "^(?:" + "|".join(NOT_FUZZED) + ")$") if NOT_FUZZED else ()),
    ]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(
            argv,
            check=False,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=1800 if FULL else 600,  # the default run takes ~4 min a mode on 2 cores (~4,000 / ~9,000 cases)
            env=_env(),
        )
        log.seek(0)
        output = log.read()
    if os.environ.get("QSTASH_SIM_FUZZ_LOG"):  # the whole report, for a failure the summary does not explain
        Path(os.environ["QSTASH_SIM_FUZZ_LOG"], f"fuzz-{mode}-{seed}.txt").write_text(output)
    generated = re.search(r"^ *(\d+) generated", output, re.MULTILINE)  # anchored: the output has 8 KB runs of digits
    assert generated is not None, _short(output[-3000:])
    print(f"fuzz {mode} seed {seed}: {generated.group(1)} cases in {time.monotonic() - started:.0f} s")
    tested = re.search(r"^ *Tested: (\d+)", output, re.MULTILINE)
    assert tested is not None and int(tested.group(1)) == expected, (
        f"expected {expected} operations tested:\n" + _short(output[-3000:])
    )
    assert int(generated.group(1)) >= MIN_CASES[mode], f"only {generated.group(1)} cases generated"
    assert "Network Error" not in output, "a request timed out or the connection failed:\n" + _short(output[-3000:])
    failures = _cases(output)
    assert not failures, f"{len(failures)} contract failures ({mode}, seed {seed}):\n\n" + "\n\n".join(
        f"{op} {sorted(codes)}\n{_short(text)}" for op, codes, text in failures
    )
    assert done.returncode == 0, _short(output[-2500:])  # the end: schemathesis' summary says why
