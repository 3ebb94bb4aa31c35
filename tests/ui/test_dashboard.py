"""The dashboard in a real browser: publish through the gateway, move the clock, read the page.

Each test drives chromium against a fresh simulator (the ``served`` fixture) and a real loopback receiver;
the page may ask nothing of any other origin (the ``ui`` fixture refuses and counts such requests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ui_support import Page, artifacts_fixture, browser_context_fixture, publish, publish_to, ui_fixture  # noqa: F401 (fixtures)

from conftest import Receiver, Served
from qstash_sim.api import default_surfaces
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator


def _open_message(ui: Page, message_id: str, query: str = "") -> Any:
    page = ui.open(query)
    page.click(f'[data-testid="message-row"][data-id="{message_id}"]')
    page.wait_for_selector(f'[data-testid="detail-id"]:text("{message_id}")')
    return page


def test_a_failing_message_tells_its_whole_life_on_one_timeline(ui: Page, served: Served, artifacts: Path) -> None:
    rec = Receiver(statuses=[500])
    try:
        mid = publish(served, rec.url("/fail"), retries=2)
        served.settle()
        served.advance("1h")  # both retries and the DLQ entry
    finally:
        rec.close()
    page = _open_message(ui, mid)
    lane = page.locator('[data-testid="lane-message"]')
    states = lane.locator('[data-testid="step"]').evaluate_all("ns => ns.map(n => n.dataset.state)")
    assert states == [
        "CREATED",
        "ACTIVE",
        "ERROR",
        "RETRY",
        "ACTIVE",
        "ERROR",
        "RETRY",
        "ACTIVE",
        "ERROR",
        "FAILED",
        "DLQ",
    ]
    gaps = lane.locator('[data-testid="gap-backoff"]').all_inner_texts()
    assert gaps == ["retry 1 in 12 s · QStash backoff", "retry 2 in 2 m 28 s · QStash backoff"]
    why = page.locator('[data-testid="why-item"]').all_inner_texts()
    assert any(t.startswith("Last response: 500") for t in why), why
    assert any("Failed after 3 attempt(s); in the DLQ as " in t for t in why), why
    assert (
        page.locator('[data-testid="lane-request"]')
        .inner_text()
        .endswith(f"POST /v2/publish/{rec.url('/fail')} → 200 at 00:00:00")
    )
    page.wait_for_selector('[data-testid="attempt"]')
    assert page.locator('[data-testid="attempt"]').count() == 3
    page.locator('[data-testid="attempt"]').first.locator("summary").click()
    verdict = page.locator('[data-testid="signature-verdict"]').first.inner_text()
    assert verdict == "a Receiver would accept it (the current signing key)"
    page.screenshot(path=str(artifacts / "timeline.png"), full_page=True)


def test_each_backoff_gap_names_its_origin_and_long_idle_gaps_are_compressed(ui: Page, served: Served) -> None:
    asked = Receiver(statuses=[429, 200], headers={"Retry-After": "30"})
    plain = Receiver(statuses=[500, 200])
    try:
        by_header = publish(served, asked.url("/busy"), retries=3)
        by_expr = publish(served, plain.url("/flaky"), retries=3, headers={"Upstash-Retry-Delay": "7000"})
        later = publish(served, plain.url("/later"), headers={"Upstash-Delay": "2h"})
        served.settle()
        served.advance("3h")
    finally:
        asked.close()
        plain.close()
    page = _open_message(ui, by_header)
    assert page.locator('[data-testid="gap-backoff"]').all_inner_texts() == ["retry 1 in 30 s · Retry-After"]
    page = _open_message(ui, by_expr)
    assert page.locator('[data-testid="gap-backoff"]').all_inner_texts() == ["retry 1 in 7 s · Upstash-Retry-Delay"]
    page.click(f'[data-testid="message-row"][data-id="{later}"]')
    brk = page.locator('[data-testid="lane-message"] [data-testid="gap-break"]')
    assert brk.inner_text() == "⋯ 2 h ⋯ · not before 02:00:00 (delay 2 h)"
    assert page.locator('[data-testid="detail-state"]').inner_text() == "delivered"


def test_why_a_message_waits_and_the_actions_change_the_engine(ui: Page, served: Served, artifacts: Path) -> None:
    sim = served.sim
    queued = served.client.post(
        "/v2/queues", json_body={"queueName": "emails", "parallelism": 1}, headers={"Authorization": "Bearer alice"}
    )
    assert queued.status == 200, queued.body
    served.client.post("/v2/queues/emails/pause", headers={"Authorization": "Bearer alice"})
    rec = Receiver(statuses=[200])
    try:
        waiting = publish(served, rec.url("/soon"), headers={"Upstash-Delay": "90s"})
        enq = served.client.post(
            f"/v2/enqueue/emails/{rec.url('/q')}", body=b"{}", headers={"Authorization": "Bearer alice"}
        )
        in_queue = enq.json["messageId"]
        page = _open_message(ui, waiting)
        why = page.locator('[data-testid="why-item"]').all_inner_texts()
        assert why == ["Not before 2026-01-01T00:01:30Z (in 1 m 30 s)."]
        page.click(f'[data-testid="message-row"][data-id="{in_queue}"]')
        assert (
            "Queue emails is paused: resume it to deliver."
            in page.locator('[data-testid="why-item"]').all_inner_texts()
        )
        page.screenshot(path=str(artifacts / "why.png"), full_page=True)

        page.click(f'[data-testid="message-row"][data-id="{waiting}"]')
        page.click('[data-testid="action-cancel"]')
        page.wait_for_selector('[data-testid="detail-state"]:text("cancelled")')
        assert served.on_loop(lambda: sim.account("alice").messages[waiting].state.value) == "cancelled"

        page.click('[data-testid="tab-queues"]')
        page.click('[data-testid="queue-toggle"][data-queue="emails"]')
        page.wait_for_selector('[data-testid="queue-toggle"]:text("Pause")')
        assert served.on_loop(lambda: sim.account("alice").queues["emails"].paused) is False
        page.screenshot(path=str(artifacts / "queues.png"), full_page=True)

        before = served.on_loop(lambda: sim.account("alice").signing_keys.next)
        page.click('[data-testid="tab-accounts"]')
        page.click('[data-testid="rotate-keys"][data-account="alice"]')
        page.wait_for_selector('[data-testid="status"]:text("rotate keys of alice: done")')
        assert served.on_loop(lambda: sim.account("alice").signing_keys.current) == before

        start = served.on_loop(sim.clock.now_ms)
        page.fill('[data-testid="advance-by"]', "90s")
        page.click('[data-testid="advance"]')
        page.wait_for_selector('[data-testid="virtual-time"]:text("2026-01-01T00:01:30Z")')
        assert served.on_loop(sim.clock.now_ms) - start == 90_000
    finally:
        rec.close()


def test_filters_live_in_the_url_and_survive_a_reload(ui: Page, served: Served) -> None:
    one = publish(served, "https://example.com/orders", account="alice")
    publish(served, "https://example.com/invoices", account="bob")
    publish(served, "https://example.com/orders", account="bob", body=b'{"needle":"haystack"}')
    page = ui.open()
    assert page.locator('[data-testid="message-row"]').count() == 3
    page.fill('[data-testid="filter-destination"]', "orders")
    page.fill('[data-testid="filter-account"]', "alice")
    page.wait_for_function("location.search.includes('account=alice')")
    assert "destination=orders" in page.evaluate("location.search")
    page.reload()
    page.wait_for_selector("body[data-complete=true]")
    assert page.input_value('[data-testid="filter-destination"]') == "orders"
    rows = page.locator('[data-testid="message-row"]')
    assert rows.count() == 1 and rows.first.get_attribute("data-id") == one
    page = ui.open("?q=needle&surface=qstash")
    assert page.locator('[data-testid="message-row"]').count() == 1
    assert page.locator('[data-testid="message-count"]').inner_text() == "1 of 3 messages"


def test_the_page_follows_the_journal_live(ui: Page, served: Served) -> None:
    page = ui.open()
    page.wait_for_selector('[data-testid="live"]:text("live")')
    assert page.locator('[data-testid="message-row"]').count() == 0
    mid = publish(served, "https://example.com/live")
    page.wait_for_selector(f'[data-testid="message-row"][data-id="{mid}"]')
    assert page.title() == "[qstash-sim] dashboard"
    assert page.locator('[data-testid="seed"]').inner_text() == "1"
    assert page.locator('[data-testid="clock-kind"]').inner_text() == "virtual"


DOWN = """name: destination-down
destinations:
  - name: down
    match: "*"
    respond:
      status: 503
      body: down for maintenance
"""


def test_a_scenario_loaded_from_the_page_explains_the_faults_it_injects(ui: Page, served: Served) -> None:
    page = ui.open("?view=scenarios")
    page.fill('[data-testid="scenario-text"]', DOWN)
    page.click('[data-testid="scenario-load"]')
    page.wait_for_selector('[data-testid="scenarios-table"] td:text("destination-down")')
    assert [s.name for s in served.on_loop(lambda: list(served.sim.scenarios))] == ["destination-down"]
    mid = publish(served, "https://example.com/down", retries=1)
    served.advance("1h")
    page = ui.open(f"?msg={mid}")
    page.wait_for_selector('[data-testid="detail-state"]:text("failed")')
    why = page.locator('[data-testid="why-item"]').all_inner_texts()
    assert [t for t in why if t.startswith("Attempt")] == [
        "Attempt 1: injected by scenario rule destination-down/down.",
        "Attempt 2: injected by scenario rule destination-down/down.",
    ]
    assert page.locator('[data-testid="dlq-response"]').inner_text().startswith("503")
    assert "down for maintenance" in page.locator('[data-testid="dlq-response"]').inner_text()


def test_the_list_is_keyboard_navigable_and_callbacks_are_child_lanes(
    ui: Page, served: Served, artifacts: Path
) -> None:
    first = publish(served, "https://example.com/one")
    second = publish(served, "https://example.com/two", headers={"Upstash-Callback": "https://example.com/cb"})
    served.settle()
    page = ui.open()
    page.focus('[data-testid="message-list"]')
    page.keyboard.press("Home")  # the newest first: the callback message, then "two", then "one"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator('[data-testid="detail-id"]').inner_text() == second
    assert page.evaluate("document.activeElement.dataset.testid") == "detail"
    lanes = page.locator('[data-testid="timeline"] .lane').evaluate_all("ls => ls.map(l => l.dataset.testid)")
    assert lanes == ["lane-request", "lane-message", "lane-callback"]
    callback = page.locator('[data-testid="lane-callback"] [data-testid="step"]').evaluate_all(
        "ns => ns.map(n => n.dataset.state)"
    )
    assert callback == ["CREATED", "ACTIVE", "DELIVERED"]
    page.focus('[data-testid="message-list"]')
    page.keyboard.press("End")
    assert page.locator('[data-testid="message-row"][aria-selected="true"]').get_attribute("data-id") == first
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(artifacts / "dark.png"), full_page=True)


def test_next_event_moves_the_clock_to_the_next_retry(ui: Page, served: Served) -> None:
    rec = Receiver(statuses=[500, 200])
    try:
        mid = publish(served, rec.url("/x"), retries=3)
        served.settle()
        page = ui.open(f"?msg={mid}")
        page.wait_for_selector('[data-testid="detail-state"]:text("retry")')
        assert (
            served.on_loop(lambda: served.sim.account("alice").messages[mid].next_delivery_ms)
            - served.on_loop(served.sim.clock.now_ms)
            == 12_000
        )
        page.click('[data-testid="next-event"]')
        page.wait_for_selector('[data-testid="detail-state"]:text("delivered")')
        assert page.locator('[data-testid="virtual-time"]').inner_text() == "2026-01-01T00:00:12Z"
    finally:
        rec.close()


def test_with_a_control_token_the_page_works_after_one_visit_with_it(browser_context: Any) -> None:
    server = ServerThread(Simulator(seed=1, clock="virtual"), surfaces=default_surfaces(control_token="s3cret")).start()
    ui = Page(browser_context, server.url)
    try:
        denied = ui.page.goto(f"{server.url}/_sim/ui")
        assert denied is not None and denied.status == 401
        mid = publish_to(server.port, "https://example.com/guarded")
        page = ui.open("?token=s3cret")
        assert "token" not in page.evaluate("location.search")  # not left in the address bar
        assert page.locator(f'[data-testid="message-row"][data-id="{mid}"]').count() == 1
        page.reload()  # the cookie carries the token now
        page.wait_for_selector("body[data-complete=true]")
        page.wait_for_selector('[data-testid="live"]:text("live")')
        assert page.locator('[data-testid="status"]').inner_text() == ""
    finally:
        ui.close()
        server.stop()
    assert not ui.errors and not ui.off_origin
