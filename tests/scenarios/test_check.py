"""``qstash-sim check`` reports every mistake of a file in one pass: schema mistakes and what only the
contract can tell (unknown operations, undocumented statuses, impossible methods) together."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BROKEN = Path(__file__).with_name("broken-example.yaml")


def test_check_reports_schema_and_contract_mistakes_together() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "qstash_sim", "check", str(BROKEN)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"{BROKEN}:1: sed: unknown key; did you mean 'seed'?",
        f"{BROKEN}:3: rules[0].match.operaton: unknown key; did you mean 'operation'?",
        f"{BROKEN}:5: rules[1].match.operation: unknown operation 'publishMesage'; did you mean 'publishMessage'?",
        f"{BROKEN}:8: rules[2].action.respond.status: status 418 is not documented for operation publishMessage"
        " in openapi.yaml; allowed: 401, 402, 404, 412, 429, 500, 502, 503, 504",
        f"{BROKEN}:9: rules[3].match.method: unknown HTTP method 'FETCH'; did you mean 'PATCH'?",
        f"{BROKEN}:10: rules[3].probability: '150%' is over 100%",
        f"{BROKEN}:11: rules[3].action.latency: at most 30s (inbound latency is waited on the real clock);"
        " use a destination 'hang' for long virtual delays",
        f"{BROKEN}:14: destinations[0].method[0]: unknown HTTP method 'FETCH'; did you mean 'PATCH'?",
    ]
