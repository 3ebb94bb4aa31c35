"""What the dashboard reads beyond the basics, without a browser: flow-control keys and URL groups in
``GET /_sim/state``, the dedup and headers facts of a request's journal entry, ``GET /_sim/schedules/fires``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from conftest import Client, Served
from qstash_sim.api import ui
from qstash_sim.api.ui.surface import ASSETS
from qstash_sim.contract.load import load_spec as contract_spec

AUTH = {"Authorization": "Bearer alice"}
HANG = {
    "name": "hang",
    "destinations": [{"name": "slow", "match": "https://slow.example/*", "respond": {"hang": "1h"}}],
}


def _publish(client: Client, url: str, headers: dict[str, str] | None = None, body: bytes = b"{}") -> Any:
    got = client.post(f"/v2/publish/{url}", body=body, headers={**AUTH, **(headers or {})})
    assert got.status in (200, 202), got.body
    return got


def test_the_state_shows_each_flow_control_key_with_its_waitlist_in_order(served: Served, client: Client) -> None:
    assert client.post("/_sim/scenarios", json_body=HANG).status == 200
    fc = {"Upstash-Flow-Control-Key": "K", "Upstash-Flow-Control-Value": "parallelism=2"}
    ids = [_publish(client, f"https://slow.example/{i}", fc).json["messageId"] for i in range(5)]
    served.settle()
    acc = client.get("/_sim/state?account=alice").json["accounts"]["alice"]
    [key] = acc["flowControl"]
    assert key["key"] == "K" and key["parallelism"] == 2 and key["rate"] is None
    assert key["inFlight"] == sorted(ids[:2])
    assert key["waitList"] == ids[2:] and key["waitListSize"] == 3
    assert {m["messageId"]: m.get("flowControlKey") for m in acc["messages"]} == dict.fromkeys(ids, "K")
    short = client.get("/_sim/state?account=alice&limit=1").json["accounts"]["alice"]["flowControl"][0]
    assert short["waitList"] == ids[2:3] and short["waitListSize"] == 3


def test_the_state_shows_url_groups_with_their_endpoints(client: Client) -> None:
    body = {"endpoints": [{"url": "https://a.example/x", "name": "a"}, {"url": "https://b.example/y"}]}
    assert client.post("/v2/topics/orders/endpoints", json_body=body, headers=AUTH).status == 200
    groups = client.get("/_sim/state").json["accounts"]["alice"]["urlGroups"]
    assert [(g["name"], g["endpoints"]) for g in groups] == [("orders", body["endpoints"])]


def test_a_deduplicated_publish_names_the_message_that_swallowed_it(served: Served, client: Client) -> None:
    first = _publish(client, "https://example.com/a", {"Upstash-Deduplication-Id": "d-1"}).json["messageId"]
    dup = _publish(client, "https://example.com/a", {"Upstash-Deduplication-Id": "d-1"})
    assert dup.status == 202 and dup.json["messageId"] == first
    content = {"Upstash-Content-Based-Deduplication": "true"}
    again = _publish(client, "https://example.com/c", content, b"same")
    _publish(client, "https://example.com/c", content, b"same")
    requests = client.get("/_sim/journal?kind=request&account=alice").json["entries"]
    publishes = [e for e in requests if e["method"] == "POST"]
    assert "deduplicated" not in publishes[0]["detail"] and publishes[0]["messageIds"] == [first]
    assert publishes[1]["messageIds"] == [] and publishes[1]["detail"]["deduplicated"] == [
        {"messageId": first, "dedupId": "d-1"}
    ]
    [hit] = publishes[3]["detail"]["deduplicated"]
    assert hit["messageId"] == again.json["messageId"] and len(hit["dedupId"]) >= 16  # the content hash


def test_a_request_that_creates_messages_keeps_its_headers_without_credentials(client: Client) -> None:
    _publish(client, "https://example.com/h", {"Upstash-Forward-X-Trace": "t-1", "Upstash-Retries": "1"})
    client.get("/_sim/health")
    entries = client.get("/_sim/journal?kind=request").json["entries"]
    headers = entries[0]["detail"]["headers"]
    assert headers["Authorization"] == "(redacted)"
    assert headers["Upstash-Forward-X-Trace"] == "t-1" and headers["Upstash-Retries"] == "1"
    assert "headers" not in entries[1]["detail"]  # a read creates nothing: nothing kept


def test_schedule_fires_lists_the_next_n_fire_times(client: Client) -> None:
    made = client.post(
        "/v2/schedules/https://example.com/tick", body=b"{}", headers={**AUTH, "Upstash-Cron": "*/15 * * * *"}
    )
    assert made.status == 200, made.body
    sid = made.json["scheduleId"]
    tz = client.post(
        "/v2/schedules/https://example.com/paris",
        body=b"{}",
        headers={**AUTH, "Upstash-Cron": "CRON_TZ=Europe/Paris 0 9 * * *"},
    )
    got = client.get("/_sim/schedules/fires?n=3").json
    start = got["now"]
    by_id = {s["scheduleId"]: s for s in got["schedules"]}
    assert [t - start for t in by_id[sid]["fires"]] == [900_000, 1_800_000, 2_700_000]
    paris = by_id[tz.json["scheduleId"]]["fires"]
    assert [t - start for t in paris] == [8 * 3_600_000 + d * 86_400_000 for d in range(3)]  # 09:00 CET = 08:00Z
    assert client.get("/_sim/schedules/fires?n=0").status == 400
    assert len(client.get("/_sim/schedules/fires?account=alice&limit=1").json["schedules"]) == 1
    assert client.get("/_sim/schedules/fires?account=alice&limit=1").json["truncated"] is True


def test_the_script_is_plain_es_modules_each_served_and_under_600_lines(client: Client) -> None:
    static = Path(ui.__file__).parent / "static"
    modules = sorted(p.name for p in static.glob("*.js"))
    assert modules == sorted(n for n in ASSETS if n.endswith(".js"))  # every module is served, and only those
    enum = contract_spec()["paths"]["/_sim/ui/{asset}"]["get"]["parameters"][0]["schema"]["enum"]
    assert sorted(enum) == sorted(ASSETS)
    page = client.get("/_sim/ui").body.decode()
    assert '<script type="module" src="/_sim/ui/app.js"></script>' in page
    for name in modules:
        text = (static / name).read_text()
        assert len(text.splitlines()) < 600, name
        for imported in re.findall(r'from "\./([a-z]+\.js)"', text):
            assert imported in modules, (name, imported)  # relative imports only, of shipped modules
        got = client.get(f"/_sim/ui/{name}")
        assert got.status == 200 and got.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert "http://" not in text and "https://" not in text, name  # nothing off the origin


def test_messages_pages_through_an_account_newest_first(served: Served, client: Client) -> None:
    ids = [_publish(client, f"https://example.com/p/{i}", {"Upstash-Delay": "1d"}).json["messageId"] for i in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = client.get("/_sim/messages?account=alice&limit=3" + (f"&cursor={cursor}" if cursor else "")).json
        assert page["total"] == 7
        seen += [m["messageId"] for m in page["messages"]]
        cursor = page.get("cursor")
        if cursor is None:
            break
    assert seen == ids[::-1]  # every message once, newest first
    # the oldest message /_sim/state shows starts the pages of the older ones
    shown = client.get("/_sim/state?account=alice&limit=2").json["accounts"]["alice"]["messages"]
    assert [m["messageId"] for m in shown] == ids[-2:]
    rest = client.get(f"/_sim/messages?account=alice&cursor={shown[0]['messageId']}&limit=100").json
    assert [m["messageId"] for m in rest["messages"]] == ids[-3::-1] and "cursor" not in rest


def test_messages_bad_input_names_the_field(client: Client) -> None:
    _publish(client, "https://example.com/one")
    missing = client.get("/_sim/messages")
    assert missing.status == 400 and "account" in missing.json["error"]
    nobody = client.get("/_sim/messages?account=nobody")
    assert nobody.status == 404 and nobody.json["error"] == "query account: no account nobody"
    gone = client.get("/_sim/messages?account=alice&cursor=msg_gone")
    assert gone.status == 400 and gone.json["error"].startswith("query cursor: message msg_gone is not kept")
    assert client.get("/_sim/messages?account=alice&limit=0").status == 400
