"""``/v2/schedules``: create (CRON_TZ, Upstash-Schedule-Id, delay, retries, queue, callbacks, URL groups),
list, get, delete, pause and resume by PATCH and POST; fires on the virtual clock."""

from __future__ import annotations

import pytest

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_sched"}
T0 = 1767225600000  # the virtual clock's start: 2026-01-01T00:00:00Z


def test_a_schedule_fires_with_its_settings(served: Served, client: Client, receiver: Receiver) -> None:
    r = client.post(
        f"/v2/schedules/{receiver.url('/tick?x=1')}",
        body=b'{"tick":true}',
        headers={
            **H,
            "Upstash-Cron": "* * * * *",
            "Upstash-Schedule-Id": "my-sched",
            "Upstash-Delay": "5s",
            "Upstash-Retries": "0",
            "Upstash-Queue-Name": "sq",
            "Upstash-Forward-X-S": "s",
            "Content-Type": "application/json",
            "Upstash-Callback": "https://example.com/cb",
            "Upstash-Label": "nightly",
        },
    )
    assert r.status == 200 and r.json == {"scheduleId": "my-sched"}
    s = client.get("/v2/schedules/my-sched", headers=H).json
    assert s["nextScheduleTime"] == T0 + 60_000 and "lastScheduleStates" not in s and "lastScheduleTime" not in s
    assert (s["destination"], s["retries"], s["delay"], s["queueName"]) == (receiver.url("/tick?x=1"), 0, 5, "sq")
    assert s["callback"] == "https://example.com/cb" and s["label"] == "nightly" and s["isPaused"] is False
    assert s["header"] == {"X-S": ["s"], "Content-Type": ["application/json"]} and s["body"] == '{"tick":true}'
    served.advance("64s")
    assert receiver.received == []  # fired at 60 s, delayed by 5 s
    served.advance("1s")
    (got,) = receiver.received
    assert got["path"] == "/tick?x=1" and got["body"] == b'{"tick":true}'
    assert got["headers"]["Upstash-Schedule-Id"] == "my-sched" and got["headers"]["X-S"] == "s"
    s = client.get("/v2/schedules/my-sched", headers=H).json
    assert s["lastScheduleTime"] == T0 + 60_000 and s["nextScheduleTime"] == T0 + 120_000
    assert list(s["lastScheduleStates"].values()) == ["SUCCESS"]
    (mid,) = s["lastScheduleStates"]
    assert got["headers"]["Upstash-Message-Id"] == mid
    events = client.get(f"/v2/events?messageId={mid}", headers=H).json["events"]
    assert {e["scheduleId"] for e in events} == {"my-sched"} and {e["queueName"] for e in events} == {"sq"}


def test_cron_tz_and_overwrite_by_schedule_id(served: Served, client: Client) -> None:
    ny = {**H, "Upstash-Cron": "CRON_TZ=America/New_York 0 9 * * *", "Upstash-Schedule-Id": "s1"}
    assert client.post("/v2/schedules/https://example.com/a", headers=ny).json == {"scheduleId": "s1"}
    s = client.get("/v2/schedules/s1", headers=H).json
    assert s["cron"] == "CRON_TZ=America/New_York 0 9 * * *"
    assert s["nextScheduleTime"] == T0 + 14 * 3_600_000  # 09:00 in New York is 14:00 UTC in January
    served.advance("1m")
    again = client.post("/v2/schedules/https://example.com/b", headers={**ny, "Upstash-Cron": "0 0 * * *"})
    assert again.json == {"scheduleId": "s1"}
    s = client.get("/v2/schedules/s1", headers=H).json
    assert s["createdAt"] == T0 and s["destination"] == "https://example.com/b" and s["cron"] == "0 0 * * *"
    assert [x["scheduleId"] for x in client.get("/v2/schedules", headers=H).json] == ["s1"]


def test_pause_and_resume_by_patch_and_post(served: Served, client: Client, receiver: Receiver) -> None:
    sid = client.post(f"/v2/schedules/{receiver.url()}", headers={**H, "Upstash-Cron": "* * * * *"}).json["scheduleId"]
    r = client.patch(f"/v2/schedules/{sid}/pause", headers=H)
    assert r.status == 200 and r.json["isPaused"] is True
    assert client.post(f"/v2/schedules/{sid}/pause", headers=H).json["isPaused"] is True  # POST, idempotent
    served.advance("2m")
    assert receiver.received == []
    assert client.post(f"/v2/schedules/{sid}/resume", headers=H).json["isPaused"] is False
    assert client.patch(f"/v2/schedules/{sid}/resume", headers=H).json["isPaused"] is False
    served.advance("1m")
    assert len(receiver.received) == 1
    r = client.delete(f"/v2/schedules/{sid}", headers=H)
    assert r.status == 200 and r.json == {"deleted": sid}
    served.advance("5m")
    assert len(receiver.received) == 1
    assert client.get(f"/v2/schedules/{sid}", headers=H).status == 404
    assert client.delete(f"/v2/schedules/{sid}", headers=H).status == 404
    assert client.patch(f"/v2/schedules/{sid}/pause", headers=H).status == 404


def test_a_schedule_to_a_url_group_fans_out(served: Served, client: Client, receiver: Receiver) -> None:
    eps = {"endpoints": [{"url": receiver.url("/a"), "name": "a"}, {"url": receiver.url("/b")}]}
    client.post("/v2/topics/team/endpoints", json_body=eps, headers=H)
    sid = client.post("/v2/schedules/team", headers={**H, "Upstash-Cron": "* * * * *"}).json["scheduleId"]
    assert client.get(f"/v2/schedules/{sid}", headers=H).json["destination"] == "team"
    served.advance("61s")
    got = sorted(receiver.received, key=lambda g: g["path"])
    assert [g["path"] for g in got] == ["/a", "/b"]
    assert {g["headers"]["Upstash-Topic-Name"] for g in got} == {"team"}
    assert {g["headers"]["Upstash-Schedule-Id"] for g in got} == {sid}
    states = client.get(f"/v2/schedules/{sid}", headers=H).json["lastScheduleStates"]
    assert sorted(states) == sorted(g["headers"]["Upstash-Message-Id"] for g in got)
    r = client.delete("/v2/topics/team", headers=H)
    assert r.status == 400 and sid in r.error
    # removing every endpoint keeps the group while the schedule targets it: the next fire publishes nothing
    client.delete(
        "/v2/topics/team/endpoints", json_body={"endpoints": [{"name": "a"}, {"url": receiver.url("/b")}]}, headers=H
    )
    assert client.get("/v2/topics/team", headers=H).json["endpoints"] == []
    served.advance("60s")
    assert len(receiver.received) == 2
    assert client.get(f"/v2/schedules/{sid}", headers=H).json["lastScheduleTime"] == T0 + 120_000


@pytest.mark.parametrize(
    ("dest", "headers", "status", "message"),
    [
        ("https://example.com/a", {}, 400, "Upstash-Cron"),
        ("https://example.com/a", {"Upstash-Cron": "61 * * * *"}, 400, "header Upstash-Cron"),
        ("https://example.com/a", {"Upstash-Cron": "* * * * *", "Upstash-Not-Before": "1"}, 400, "Upstash-Not-Before"),
        (
            "https://example.com/a",
            {"Upstash-Cron": "* * * * *", "Upstash-Schedule-Id": "a b"},
            400,
            "header Upstash-Schedule-Id",
        ),
        (
            "https://example.com/a",
            {"Upstash-Cron": "* * * * *", "Upstash-Queue-Name": "a/b"},
            400,
            "header Upstash-Queue-Name",
        ),
        ("no-such-group", {"Upstash-Cron": "* * * * *"}, 404, "url group no-such-group not found"),
        ("example.com/x", {"Upstash-Cron": "* * * * *"}, 400, "invalid scheme"),
    ],
)
def test_bad_schedule_creations(
    served: Served, client: Client, dest: str, headers: dict[str, str], status: int, message: str
) -> None:
    r = client.post(f"/v2/schedules/{dest}", headers={**H, **headers})
    assert r.status == status and message in r.error, r.error
    assert client.get("/v2/schedules", headers=H).json == []


def test_get_and_delete_take_one_segment_and_ignore_the_query_string(client: Client) -> None:
    client.post(
        "/v2/schedules/https://example.com/a", headers={**H, "Upstash-Cron": "* * * * *", "Upstash-Schedule-Id": "s.1"}
    )
    assert client.get("/v2/schedules/s.1?qstash_token=tok_sched").json["scheduleId"] == "s.1"
    assert client.get("/v2/schedules/s%2E1", headers=H).json["scheduleId"] == "s.1"
    r = client.get("/v2/schedules/s.1/extra/segment", headers=H)  # no schedule id: only a creation's path
    assert r.status == 405 and r.headers["Allow"] == "POST"
    assert client.request("PUT", "/v2/schedules/s.1", headers=H).status == 405
