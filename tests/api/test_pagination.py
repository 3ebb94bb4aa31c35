"""``/_sim/journal`` and ``/_sim/deliveries`` come a page at a time (``cursor``, ``limit``), ``/_sim/state`` is
cut to ``limit`` per list, ``/_sim/health`` shows the limits and what they dropped, and a long
``/_sim/clock/advance`` lets other requests through (finding M1).

Every answer is checked against openapi.yaml by the ``client`` fixture (see conftest.py).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conftest import Client, Served
from qstash_sim.domain.world import Limits

P = "/v1/qstash"


def publish(client: Client, dest: str = "https://example.com/hook", key: str | None = None, **headers: str) -> str:
    hdrs = {"Content-Type": "application/json", **headers}
    if key is not None:
        hdrs["x-api-key"] = key
    r = client.post(f"{P}/publish/{dest}", body=b'{"n":1}', headers=hdrs)
    assert r.status == 200, r.body
    return str(r.json["messageId"])


def pages(client: Client, path: str, field: str, limit: int) -> list[list[dict[str, Any]]]:
    """Every page of ``path`` (``?limit=`` added), following ``cursor`` until there is none."""
    sep = "&" if "?" in path else "?"
    out: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(10_000):
        url = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).json
        out.append(body[field])
        assert len(body[field]) <= limit
        cursor = body.get("cursor")
        if cursor is None:
            return out
    raise AssertionError("the cursor never ran out")


# ------------------------------------------------------------------------------------------ journal


@pytest.mark.parametrize("limit", [1, 2, 7, 1000])
def test_journal_pages_cover_every_entry_exactly_once(served: Served, limit: int) -> None:
    client = served.client
    for i in range(25):
        publish(client, f"https://example.com/{i}")
    served.settle()
    before = served.on_loop(lambda: [e.seq for e in served.sim.world.journal])  # requests and attempts
    got = [e["seq"] for page in pages(client, "/_sim/journal", "entries", limit) for e in page]
    assert len(got) == len(set(got)) and got == sorted(got)  # once each, in order
    assert set(before) <= set(got)  # every entry there before paging began (paging adds its own)


def test_journal_pages_with_filters_and_since(served: Served) -> None:
    client = served.client
    ids = [publish(client, key=f"k{i % 2}") for i in range(12)]
    served.settle()
    attempts = [e for page in pages(client, "/_sim/journal?kind=attempt", "entries", 5) for e in page]
    assert [e["messageId"] for e in attempts] == ids and all(e["kind"] == "attempt" for e in attempts)
    mine = [e for page in pages(client, "/_sim/journal?kind=request&account=k1", "entries", 2) for e in page]
    assert [e["messageIds"] for e in mine] == [[m] for m in ids[1::2]]
    since = attempts[5]["seq"]
    later = [e for page in pages(client, f"/_sim/journal?kind=attempt&since={since}", "entries", 3) for e in page]
    assert [e["messageId"] for e in later] == ids[6:]


def test_journal_cursor_and_since_the_later_wins(client: Client) -> None:
    for _ in range(6):
        publish(client)
    first = client.get("/_sim/journal?kind=request&limit=2").json
    assert len(first["entries"]) == 2 and "cursor" in first
    cursor = first["cursor"]
    pos = int(cursor.split(".")[0])
    assert pos == first["entries"][-1]["seq"]
    assert client.get(f"/_sim/journal?kind=request&since={pos + 100}&cursor={cursor}").json["entries"] == []
    again = client.get(f"/_sim/journal?kind=request&limit=2&since=0&cursor={cursor}").json["entries"]
    assert again[0]["seq"] > pos
    bare = client.get(f"/_sim/journal?kind=request&limit=2&cursor={pos}").json["entries"]  # a bare seq works too
    assert bare == again


def test_a_sparse_filter_ends_a_page_early_with_a_cursor(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from qstash_sim.api.control import handlers

    monkeypatch.setattr(handlers, "PAGE_SCAN", 10)
    monkeypatch.setattr(handlers, "PAGE_BUDGET_S", None)  # pages end by count only: exact boundaries
    client = served.client
    for _ in range(30):
        assert client.get("/nowhere").status == 404
    mid = publish(client, key="me")
    first = client.get("/_sim/journal?account=nobody").json
    assert first["entries"] == [] and first["cursor"].startswith("10.")  # 10 looked at, none matched: go on
    mine = pages(client, "/_sim/journal?kind=request&account=me", "entries", 1000)
    assert len(mine) >= 3 and [e["messageIds"] for page in mine for e in page] == [[mid]]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=10001", "limit=x", "cursor=abc", "cursor=-1", "cursor=" + "9" * 19]
)
def test_bad_page_parameters_answer_400(client: Client, query: str) -> None:
    for path in ("/_sim/journal", "/_sim/deliveries"):
        r = client.get(f"{path}?{query}")
        assert r.status == 400, (path, query, r.body)


def test_the_default_page_is_1000_entries(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from qstash_sim.api.control import handlers

    monkeypatch.setattr(handlers, "PAGE_BUDGET_S", None)  # a loaded machine must not end the page early

    def fill() -> None:
        for i in range(1500):
            served.sim.world.journal.add(served.sim.world.now, "warning", error=f"w{i}")

    served.on_loop(fill)
    first = served.client.get("/_sim/journal?kind=warning").json
    assert len(first["entries"]) == 1000 and first["cursor"].startswith(f"{first['entries'][-1]['seq']}.")
    rest = served.client.get(f"/_sim/journal?kind=warning&cursor={first['cursor']}").json
    assert len(rest["entries"]) == 500 and "cursor" not in rest


def test_a_page_ends_early_once_its_time_budget_is_spent(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from qstash_sim.api.control import handlers

    monkeypatch.setattr(handlers, "PAGE_BUDGET_S", 0.0)  # spent at once: one entry per page, never none
    client = served.client
    for _ in range(5):
        publish(client)
    served.settle()
    got = pages(client, "/_sim/deliveries", "deliveries", 1000)
    assert [len(p) for p in got] == [1] * 5 and [d["seq"] for p in got for d in p] == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------------------ deliveries


@pytest.mark.parametrize("limit", [1, 4, 1000])
def test_deliveries_pages_cover_every_delivery_exactly_once(served: Served, limit: int) -> None:
    client = served.client
    ids = [publish(client, f"https://example.com/{i % 3}", key=f"k{i % 2}") for i in range(15)]
    served.settle()
    got = [d for page in pages(client, "/_sim/deliveries", "deliveries", limit) for d in page]
    assert [d["messageId"] for d in got] == ids and [d["seq"] for d in got] == list(range(1, 16))
    url = "https://example.com/1"
    by_url = [d for page in pages(client, f"/_sim/deliveries?url={url}&account=k0", "deliveries", limit) for d in page]
    assert [d["messageId"] for d in by_url] == [m for i, m in enumerate(ids) if i % 3 == 1 and i % 2 == 0]
    since = [d["seq"] for page in pages(client, "/_sim/deliveries?since=10", "deliveries", limit) for d in page]
    assert since == list(range(11, 16))


# ------------------------------------------------------------------------------------------ state and health


def test_state_is_cut_to_limit_per_list(client: Client) -> None:
    ids = [publish(client) for _ in range(5)]
    whole = client.get("/_sim/state").json
    assert "truncated" not in whole and [m["messageId"] for m in whole["accounts"]["default"]["messages"]] == ids
    cut = client.get("/_sim/state?limit=2").json
    assert cut["truncated"] is True and [m["messageId"] for m in cut["accounts"]["default"]["messages"]] == ids[3:]
    for key in ("a", "b", "c"):
        publish(client, key=key)
    accounts = client.get("/_sim/state?limit=2").json["accounts"]
    assert list(accounts) == ["b", "c"]  # the newest accounts
    assert list(client.get("/_sim/state?account=default&limit=10").json["accounts"]) == ["default"]
    assert client.get("/_sim/state?limit=0").status == 400


def test_health_shows_the_limits_and_what_was_dropped(served: Served) -> None:
    client = served.client
    health = client.get("/_sim/health").json
    assert health["limits"] == {
        "journal": 100_000,
        "deliveries": 50_000,
        "messages": 100_000,
        "dlqPerAccount": 10_000,
        "dedupPerAccount": 100_000,
        "accounts": 10_000,
        "ledger": 100_000,
        "inFlight": 100,  # not a store: attempts on real sockets at once
    }
    assert set(health["evicted"].values()) == {0}
    served.on_loop(lambda: served.sim.world.set_limits(Limits(journal=5, deliveries=2, messages=1, accounts=2)))
    ids = [publish(client, key=f"k{i}") for i in range(4)]
    served.settle()
    health = client.get("/_sim/health").json
    assert health["limits"]["journal"] == 5 and health["limits"]["dedupPerAccount"] == 100_000
    ev = health["evicted"]
    assert ev["deliveries"] == 2 and ev["messages"] == 3 and ev["accounts"] >= 1 and ev["journal"] > 0
    assert client.get(f"{P}/messages/{ids[-1]}", headers={"x-api-key": "k3"}).status == 200
    entries = client.get("/_sim/journal").json["entries"]
    assert len(entries) == 4 and entries[0]["seq"] > ev["journal"]  # 5 kept, this request's own left out
    client.post("/_sim/reset", json_body={})
    assert set(client.get("/_sim/health").json["evicted"].values()) == {0}


# ------------------------------------------------------------------------------------------ advance


def test_a_long_advance_lets_other_requests_through(served: Served) -> None:
    client = served.client
    r = client.post(
        f"{P}/schedules/https://example.com/tick",
        body=b"{}",
        headers={"Content-Type": "application/json", "Upstash-Cron": "* * * * *"},
    )
    assert r.status == 200, r.body
    start = client.get("/_sim/clock").json["now"]
    target = start + 60 * 86_400_000  # 86,400 fires, each delivered: seconds of work (172,800 events)
    done: dict[str, Any] = {}

    def advance() -> None:
        other = Client("127.0.0.1", served.server.port)
        try:
            done["answer"] = other.post("/_sim/clock/advance", json_body={"by": "60d"})
        finally:
            other.close()

    thread = threading.Thread(target=advance)
    thread.start()
    try:
        during: list[int] = []
        while thread.is_alive():
            assert client.get("/_sim/health").json["ok"] is True
            now = client.get("/_sim/clock").json["now"]
            if start < now < target:
                during.append(now)
                if len(during) >= 3:
                    break
    finally:
        thread.join(60)
    assert done["answer"].status == 200 and done["answer"].json["now"] == target
    assert len(during) >= 3, "no request was answered while the advance ran"
    assert during == sorted(during)
