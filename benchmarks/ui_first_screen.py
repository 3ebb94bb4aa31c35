"""How long the dashboard takes to show its first screen of messages, in Debian's chromium.

    .venv/bin/python -m benchmarks.ui_first_screen [--messages 10000] [--rounds 5]

Publishes ``--messages`` messages (through ``POST /v2/batch``, 100 a call, 10,000 per account, delayed a
day so they stay pending), then opens ``/_sim/ui`` in a fresh headless chromium ``--rounds`` times and
reports, per load, the time from navigation start until the first rows are painted (``body[data-ready]``:
the journal and the newest 300 messages of each account read, the list rendered), until every message is
in the list (``body[data-complete]``), and the time a free-text filter over every message takes. A
figure, not a test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import tempfile
import time

from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Type a free-text filter over every message and time the list's answer (filtering, then painting).
FILTER_JS = """() => {
  const input = document.querySelector('[data-testid="filter-q"]');
  const t = performance.now();
  input.value = 'orders/7';
  input.dispatchEvent(new Event('input', {bubbles: true}));
  return performance.now() - t;
}"""


def _fill(port: int, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for start in range(0, n, 100):
        batch = [
            {
                "destination": f"https://example.com/orders/{i % 50}",
                "headers": {"Upstash-Delay": "1d", "Content-Type": "application/json"},
                "body": json.dumps({"order": i}),
            }
            for i in range(start, min(n, start + 100))
        ]
        account = f"bench{start // 10_000}"  # 10,000 per account: what GET /_sim/state shows of each
        conn.request("POST", "/v2/batch", body=json.dumps(batch), headers={"Authorization": f"Bearer {account}"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
    conn.close()


def run(messages: int = 10_000, rounds: int = 5) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    server = ServerThread(Simulator(seed=1, clock="virtual")).start()
    t0 = time.perf_counter()
    _fill(server.port, messages)
    fill_s = time.perf_counter() - t0
    loads: list[float] = []
    filters: list[float] = []
    completes: list[float] = []
    profile = tempfile.mkdtemp(prefix="qstash-sim-bench-")
    pw = sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        for _ in range(rounds):
            page = ctx.new_page()
            page.goto(f"{server.url}/_sim/ui")
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            loads.append(page.evaluate("performance.now()"))
            page.wait_for_selector("body[data-complete=true]", timeout=120_000)
            completes.append(page.evaluate("performance.now()"))
            rows = page.locator('[data-testid="message-row"]').count()
            assert 0 < rows < 100, rows  # virtualised: only the rows on screen exist
            took = page.evaluate(FILTER_JS)
            filters.append(took)
            page.close()
        ctx.close()
    finally:
        pw.stop()
        server.stop()
        shutil.rmtree(profile, ignore_errors=True)
    return {
        "messages": messages,
        "publish_s": round(fill_s, 2),
        "first_screen_ms_median": round(statistics.median(loads), 1),
        "first_screen_ms_max": round(max(loads), 1),
        "all_rows_ms_median": round(statistics.median(completes), 1),
        "filter_ms_median": round(statistics.median(filters), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for key, value in run(args.messages, args.rounds).items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
