"""What the ``qstash_sim`` fixture costs a test suite: medians over bounded iterations, no pytest involved.

* ``first_use_ms``: starting a server (what the first test of a session or xdist worker waits for).
  The plugin imports the simulator lazily, on first use; that one-off import is ``import_ms``.
* ``per_test_ms``: the fixture's work around one test: reset + hand-over (``QstashSim.open``) and
  teardown (``finish``: settle and error check), on a warm server.
* ``publish_rtt_ms``: one ``POST /v1/qstash/publish/...`` from a sync keep-alive ``http.client``,
  answered (virtual destination, delivered at once on the server's loop).

Budgets (issue #plugin): per test < 5 ms, first use < 150 ms, publish < 2 ms.
``python -m benchmarks.fixture_bench`` prints the figures; ``run()`` returns them.
"""

from __future__ import annotations

import http.client
import importlib
import statistics
import sys
import time
from typing import Any

BUDGET_MS = {"first_use_ms": 150.0, "per_test_ms": 5.0, "publish_rtt_ms": 2.0}


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def run(*, starts: int = 5, tests: int = 300, publishes: int = 500) -> dict[str, Any]:
    """Measure and print the three figures (plus the import cost); returns them with their budgets."""
    t0 = time.perf_counter()
    handle = importlib.import_module("qstash_sim.pytest_plugin.handle")
    server_mod = importlib.import_module("qstash_sim.pytest_plugin.server")
    import_ms = round((time.perf_counter() - t0) * 1000, 1)

    # first use: a fresh server each time (the compiled contract is rebuilt by every start)
    start_samples = []
    for _ in range(starts):
        t = time.perf_counter()
        server = server_mod.SimServer.start()
        start_samples.append(time.perf_counter() - t)
        server.stop()

    server = server_mod.SimServer.start()
    try:
        config = server_mod.SimConfig(seed=1)
        per_test = []
        for _ in range(tests):
            t = time.perf_counter()
            sim = handle.QstashSim.open(server, config)
            sim.finish()
            per_test.append(time.perf_counter() - t)

        sim = handle.QstashSim.open(server, config)
        conn = http.client.HTTPConnection("127.0.0.1", int(sim.sapiom_base_url.rsplit(":", 1)[1]), timeout=10)
        path = "/v1/qstash/publish/https://api.example.com/fulfillment"
        headers = {**sim.headers, "Content-Type": "application/json"}
        body = b'{"orderId":"ord_456","action":"ship"}'
        rtt = []
        try:
            for _ in range(publishes):
                t = time.perf_counter()
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                rtt.append(time.perf_counter() - t)
                if resp.status != 200:
                    raise RuntimeError(f"publish answered {resp.status}")
        finally:
            conn.close()
        sim.finish()
    finally:
        server.stop()

    result: dict[str, Any] = {
        "first_use_ms": _median_ms(start_samples),
        "per_test_ms": _median_ms(per_test),
        "publish_rtt_ms": _median_ms(rtt),
        "import_ms": import_ms,
        "iterations": {"starts": starts, "tests": tests, "publishes": publishes},
        "budget_ms": dict(BUDGET_MS),
    }
    for key, budget in BUDGET_MS.items():
        flag = "ok" if result[key] < budget else "OVER BUDGET"
        print(f"{key:>15}: {result[key]:8.3f} ms median (budget {budget} ms) {flag}")
    print(f"{'import_ms':>15}: {import_ms:8.1f} ms once (first fixture use in a process)")
    return result


if __name__ == "__main__":
    run()
    sys.exit(0)
