"""A header the gateway does not know is no error (the fuzzer's finding judged: its mistake).

Negative-mode fuzzing flagged a schedule creation that carried an extra ``x-...`` header and was accepted.
HTTP recipients ignore the fields they do not know (RFC 9110, 5.1) and QStash does; with
``Upstash-Header-Forward: true`` such a header is even the message's own, forwarded to the destination.
So the gateway accepts it, and tests/contract/test_fuzz.py tells schemathesis not to send extra headers as
invalid data on these routes. (An unknown ``Upstash-*`` header is a different matter: a journal warning,
a 400 under ``--strict``.)
"""

from __future__ import annotations

import pytest

from conftest import Client, Served

P = "/v1/qstash"
CRON = {"Upstash-Cron": "* * * * *"}


@pytest.mark.parametrize("forward", ["false", "true"])
def test_a_schedule_creation_with_an_unknown_header_is_accepted(client: Client, forward: str) -> None:
    r = client.post(
        f"{P}/schedules/https://example.com/x",
        body=b"hi",
        headers={**CRON, "x-fuzz-extra": "1", "Upstash-Header-Forward": forward},
    )
    assert r.status == 200, r.body
    schedule = client.get(f"{P}/schedules/{r.json['scheduleId']}").json
    assert ("x-fuzz-extra" in {k.lower() for k in schedule["header"]}) is (forward == "true")


def test_publish_and_enqueue_with_an_unknown_header_are_accepted(served: Served, client: Client) -> None:
    for path in (f"{P}/publish/https://example.com/x", f"{P}/enqueue/q1/https://example.com/x"):
        assert client.post(path, body=b"x", headers={"x-fuzz-extra": "1"}).status == 200
    assert served.on_loop(lambda: [e for e in served.sim.world.journal if e.kind == "warning"]) == []


def test_an_unknown_upstash_header_is_still_a_warning(served: Served, client: Client) -> None:
    assert client.post(f"{P}/publish/https://example.com/x", body=b"x", headers={"Upstash-Retrys": "1"}).status == 200
    warnings = served.on_loop(lambda: [e.error or "" for e in served.sim.world.journal if e.kind == "warning"])
    assert any("Upstash-Retrys" in w and "Upstash-Retries" in w for w in warnings), warnings
