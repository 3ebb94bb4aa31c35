"""The dashboard's newer views in a real browser: flow-control waitlists, URL groups, dedup, the headers
forwarded vs stripped, the next fires of a schedule. Each saves a screenshot of its view."""

from __future__ import annotations

from pathlib import Path

from ui_support import Page, artifacts_fixture, browser_context_fixture, publish, ui_fixture  # noqa: F401 (fixtures)

from conftest import Receiver, Served

AUTH = {"Authorization": "Bearer alice"}
HANG = {
    "name": "hang",
    "destinations": [{"name": "slow", "match": "https://slow.example/*", "respond": {"hang": "1h"}}],
}


def test_a_message_in_a_flow_control_waitlist_says_where_it_stands(ui: Page, served: Served, artifacts: Path) -> None:
    assert served.client.post("/_sim/scenarios", json_body=HANG).status == 200
    fc = {"Upstash-Flow-Control-Key": "K", "Upstash-Flow-Control-Value": "parallelism=2"}
    ids = [publish(served, f"https://slow.example/job/{i}", headers=fc) for i in range(5)]
    served.settle()
    page = ui.open(f"?msg={ids[4]}")
    page.wait_for_selector(f'[data-testid="detail-id"]:text("{ids[4]}")')
    why = page.locator('[data-testid="why-item"]').all_inner_texts()
    assert why == ["3rd in the waitlist of flow-control key K (parallelism 2, 2 in flight)."]
    page.click(f'[data-testid="message-row"][data-id="{ids[2]}"]')
    assert page.locator('[data-testid="why-item"]').all_inner_texts() == [
        "1st in the waitlist of flow-control key K (parallelism 2, 2 in flight)."
    ]
    page.click(f'[data-testid="message-row"][data-id="{ids[0]}"]')
    assert page.locator('[data-testid="why-item"]').all_inner_texts() == ["An attempt is in flight."]

    page.click('[data-testid="tab-flow"]')
    row = page.locator('[data-testid="flow-table"] tbody tr')
    assert row.count() == 1
    assert row.locator('[data-testid="flow-in-flight"]').inner_text() == "2 of 2"
    assert row.locator('[data-testid="flow-waitlist"]').inner_text() == f"3 · next {ids[2]}, {ids[3]}, {ids[4]}"
    assert row.locator('[data-testid="flow-rate"]').inner_text() == "no rate limit"
    assert row.locator('[data-testid="flow-state"]').inner_text() == "running"
    page.screenshot(path=str(artifacts / "flow-control.png"), full_page=True)
    page.click('[data-testid="flow-toggle"][data-key="K"]')
    page.wait_for_selector('[data-testid="flow-state"]:text("paused")')
    assert served.on_loop(lambda: served.sim.account("alice").flow_keys["K"].paused) is True
    page.click('[data-testid="tab-messages"]')
    page.click(f'[data-testid="message-row"][data-id="{ids[3]}"]')
    assert page.locator('[data-testid="why-item"]').all_inner_texts() == [
        "2nd in the waitlist of flow-control key K (parallelism 2, 2 in flight); "
        "the key is paused: resume it to deliver."
    ]
    page = ui.open("?flow=K&state=pending")
    assert page.locator('[data-testid="message-row"]').count() == 5


def test_a_rate_limited_key_shows_its_window(ui: Page, served: Served) -> None:
    fc = {"Upstash-Flow-Control-Key": "R", "Upstash-Flow-Control-Value": "rate=1, period=1m"}
    first = publish(served, "https://example.com/r/1", headers=fc)
    second = publish(served, "https://example.com/r/2", headers=fc)
    served.settle()
    served.advance("20s")
    page = ui.open("?view=flow")
    assert (
        page.locator('[data-testid="flow-rate"]').inner_text() == "1 of 1 per 60 s · 00:00:00–00:01:00 (ends in 40 s)"
    )
    page.click('[data-testid="tab-messages"]')
    page.click(f'[data-testid="message-row"][data-id="{second}"]')
    assert page.locator('[data-testid="why-item"]').all_inner_texts() == [
        "1st in the waitlist of flow-control key R (0 in flight; rate 1 per 60 s, 1 started this period); "
        "the rate period ends at 00:01:00."
    ]
    page.click(f'[data-testid="message-row"][data-id="{first}"]')
    assert page.locator('[data-testid="detail-state"]').inner_text() == "delivered"
    page.click('[data-testid="next-event"]')  # the key's release, not "now"
    page.wait_for_selector('[data-testid="virtual-time"]:text("2026-01-01T00:01:00Z")')


def test_the_url_groups_tab_lists_each_group_with_its_endpoints(ui: Page, served: Served, artifacts: Path) -> None:
    body = {"endpoints": [{"url": "https://a.example/x", "name": "billing"}, {"url": "https://b.example/y"}]}
    assert served.client.post("/v2/topics/orders/endpoints", json_body=body, headers=AUTH).status == 200
    page = ui.open("?view=urlgroups")
    assert page.locator('[data-testid="urlgroup-name"]').all_inner_texts() == ["orders"]
    endpoints = page.locator(
        '[data-testid="urlgroup-endpoints"][data-group="orders"] [data-testid="urlgroup-endpoint"]'
    )
    assert endpoints.all_inner_texts() == ["billing: https://a.example/x", "https://b.example/y"]
    page.screenshot(path=str(artifacts / "url-groups.png"), full_page=True)


def test_a_deduplicated_publish_says_which_message_swallowed_it(ui: Page, served: Served, artifacts: Path) -> None:
    dedup = {"Upstash-Deduplication-Id": "d-1"}
    first = publish(served, "https://example.com/once", headers=dedup)
    served.advance("5s")
    dup = served.client.post("/v2/publish/https://example.com/once", body=b"{}", headers={**AUTH, **dedup})
    assert dup.status == 202 and dup.json["messageId"] == first
    page = ui.open(f"?msg={first}")
    page.wait_for_selector(f'[data-testid="detail-id"]:text("{first}")')
    why = page.locator('[data-testid="why-item"]').all_inner_texts()
    assert f"POST /v2/publish/https://example.com/once at 00:00:05: swallowed by {first} under dedup id d-1." in why
    page.click('[data-testid="tab-journal"]')
    assert page.locator('[data-testid="journal-dedup"]').all_inner_texts() == [
        f"swallowed by {first} under dedup id d-1"
    ]
    page.screenshot(path=str(artifacts / "journal-dedup.png"), full_page=True)


def test_the_inspector_shows_which_headers_were_forwarded_and_which_stripped(
    ui: Page, served: Served, artifacts: Path
) -> None:
    rec = Receiver(statuses=[200])
    try:
        mid = publish(
            served,
            rec.url("/h"),
            retries=1,
            headers={"Upstash-Forward-X-Trace": "t-1", "X-Plain": "p", "Upstash-Delay": "0s"},
        )
        served.settle()
    finally:
        rec.close()
    assert rec.received[0]["headers"]["X-Trace"] == "t-1" and "X-Plain" not in rec.received[0]["headers"]
    page = ui.open(f"?msg={mid}")
    page.wait_for_selector('[data-testid="attempt"]')
    page.locator('[data-testid="attempt"]').first.locator("summary").click()
    rows = page.locator('[data-testid="header-fate"]')
    fates = dict(zip(rows.evaluate_all("rs => rs.map(r => r.dataset.header)"), rows.all_inner_texts(), strict=True))
    assert fates["Upstash-Forward-X-Trace"] == "Upstash-Forward-X-Trace\tforwarded as X-Trace"
    assert fates["X-Plain"] == "X-Plain\tnot forwarded"
    assert fates["Authorization"] == "Authorization\tnot forwarded (the caller's credential)"
    assert fates["Upstash-Retries"] == "Upstash-Retries\tconsumed as QStash config"
    assert fates["Upstash-Delay"] == "Upstash-Delay\tconsumed as QStash config"
    assert fates["Content-Type"] == "Content-Type\tforwarded"
    assert fates["Upstash-Signature"] == "Upstash-Signature\tadded by the delivery"
    page.locator('[data-testid="header-fates"]').first.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "headers.png"), full_page=True)


def test_the_schedules_tab_lists_the_next_fires(ui: Page, served: Served, artifacts: Path) -> None:
    made = served.client.post(
        "/v2/schedules/https://example.com/tick", body=b"{}", headers={**AUTH, "Upstash-Cron": "*/15 * * * *"}
    )
    assert made.status == 200, made.body
    served.advance("20m")  # one fire done: the next ones start at 00:30
    page = ui.open("?view=schedules")
    fires = page.locator(f'[data-testid="schedule-fires"][data-schedule="{made.json["scheduleId"]}"] li')
    assert fires.all_inner_texts() == [
        "2026-01-01T00:30:00Z (in 10 m)",
        "2026-01-01T00:45:00Z (in 25 m)",
        "2026-01-01T01:00:00Z (in 40 m)",
        "2026-01-01T01:15:00Z (in 55 m)",
        "2026-01-01T01:30:00Z (in 1 h 10 m)",
    ]
    page.screenshot(path=str(artifacts / "schedules.png"), full_page=True)
