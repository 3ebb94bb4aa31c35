"""The message list beyond what ``GET /_sim/state`` shows of an account (10,000): the page reads the rest
through ``GET /_sim/messages`` page by page, stays virtualised, and its oldest message can be scrolled to
and opened. The messages are published in-process (the core's publish), not over HTTP one by one."""

from __future__ import annotations

import json

from ui_support import Page, artifacts_fixture, browser_context_fixture, ui_fixture  # noqa: F401 (fixtures)

from conftest import Served
from qstash_sim.domain.commands import Caller, MessageSettings, PublishCommand

MANY = 25_000
DAY_MS = 24 * 3600 * 1000


def _publish_many(served: Served, n: int, account: str) -> list[str]:
    def fill() -> list[str]:
        caller = Caller(account=account)
        return [
            served.sim.publish(
                caller,
                PublishCommand(
                    MessageSettings(url=f"https://example.com/orders/{i % 50}", delay_ms=DAY_MS),
                    json.dumps({"order": i}, separators=(",", ":")).encode(),
                ),
            ).message_id
            for i in range(n)
        ]

    ids: list[str] = served.on_loop(fill)
    return ids


def test_the_list_pages_through_every_message_and_scrolls_to_the_oldest(ui: Page, served: Served) -> None:
    ids = _publish_many(served, MANY, "bulk")
    page = ui.open()
    assert page.locator('[data-testid="message-count"]').inner_text() == f"{MANY} of {MANY} messages"
    rows = page.locator('[data-testid="message-row"]')
    assert 0 < rows.count() < 100  # virtualised: only the rows on screen exist
    assert rows.first.get_attribute("data-id") == ids[-1]  # newest first
    page.locator('[data-testid="message-list"]').evaluate("l => { l.scrollTop = l.scrollHeight; }")
    oldest = page.locator(f'[data-testid="message-row"][data-id="{ids[0]}"]')
    oldest.wait_for()
    assert page.locator('[data-testid="message-row"]').last.get_attribute("data-id") == ids[0]
    oldest.click()
    page.wait_for_selector(f'[data-testid="detail-id"]:text("{ids[0]}")')
    assert page.locator('[data-testid="detail-state"]').inner_text() == "pending"
    # the free-text filter searches every message, the oldest pages included
    page.fill('[data-testid="filter-q"]', '{"order":0}')
    assert page.locator('[data-testid="message-count"]').inner_text() == f"1 of {MANY} messages"
    assert page.locator('[data-testid="message-row"]').evaluate_all("rs => rs.map(r => r.dataset.id)") == [ids[0]]
    assert f"q=%7B%22order%22%3A0%7D&msg={ids[0]}" in page.url
