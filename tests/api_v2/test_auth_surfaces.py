"""Who is calling (``Authorization: Bearer``, ``?qstash_token=``, the shared token -> account map), one account
state behind ``/v1/qstash`` and ``/v2``, and ``serve --surface`` / ``--token``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import serve_proc
from conftest import Client, Receiver, Served
from qstash_sim.api import default_surfaces
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwdw=="}, {"x-api-key": "sapiom-style"}],
)
def test_no_token_is_401_with_qstash_error_body(client: Client, headers: dict[str, str]) -> None:
    r = client.get("/v2/queues", headers=headers)
    assert r.status == 401 and "missing token" in r.error and set(r.json) == {"error"}


def test_the_token_in_the_query_names_the_account_and_leaves_the_destination(
    served: Served, client: Client, receiver: Receiver
) -> None:
    r = client.post(f"/v2/publish/{receiver.url('/q')}?qstash_token=tok_q&k=v", body=b"x")
    assert r.status == 200 and r.json["url"] == receiver.url("/q?k=v")
    assert client.get("/v2/queues?qstash_token=tok_q").status == 200
    served.settle()
    assert receiver.received[0]["path"] == "/q?k=v"
    assert [m.account for m in served.on_loop(lambda: served.sim.messages())] == ["tok_q"]


def test_configured_tokens_are_the_only_ones_accepted_on_both_surfaces(
    served: Served, client: Client, receiver: Receiver
) -> None:
    served.on_loop(lambda: served.sim.tokens.add("tok_alice", "alice"))
    r = client.get("/v2/queues", headers={"Authorization": "Bearer tok_unknown"})
    assert r.status == 401 and "invalid token" in r.error
    r = client.post("/v1/qstash/publish/https://example.com/x", body=b"x", headers={"x-api-key": "tok_unknown"})
    assert r.status == 401 and "invalid API key" in r.error
    # the known token names its account on /v2 (Bearer) and on /v1 (x-api-key, or Bearer)
    v2 = client.post(
        f"/v2/publish/{receiver.url()}", body=b"x", headers={"Authorization": "Bearer tok_alice", "Upstash-Delay": "1h"}
    )
    mid = v2.json["messageId"]
    v1 = client.get(f"/v1/qstash/messages/{mid}", headers={"x-api-key": "tok_alice"})
    assert v1.status == 200 and v1.json["state"] == "pending"
    assert (
        client.get("/v2/keys", headers={"Authorization": "Bearer tok_alice"}).json["current"]
        == (client.get("/_sim/signing-keys?account=alice").json["current"])
    )
    assert [m.account for m in served.on_loop(lambda: served.sim.messages())] == ["alice"]
    # the Sapiom API's key maps the same way
    tx = client.post(
        "/v1/transactions",
        json_body={"serviceName": "s", "actionName": "a", "resourceName": "r"},
        headers={"x-api-key": "tok_alice"},
    )
    assert tx.status in (200, 201) and tx.json.get("accountId", "alice") == "alice"
    # without a key the Sapiom surface still names the shared default account
    assert client.post("/v1/qstash/publish/https://example.com/x", body=b"x").status == 200


def test_one_account_state_behind_both_surfaces(served: Served, client: Client, receiver: Receiver) -> None:
    v1 = {"x-api-key": "shared"}
    v2 = {"Authorization": "Bearer shared"}
    mid = client.post(f"/v1/qstash/publish/{receiver.url()}", body=b"x", headers={**v1, "Upstash-Delay": "1h"}).json[
        "messageId"
    ]
    assert client.get(f"/v2/messages/{mid}", headers=v2).json["messageId"] == mid
    client.post(f"/v2/enqueue/q2/{receiver.url()}", body=b"x", headers={**v2, "Upstash-Delay": "1h"})
    assert [q["name"] for q in client.get("/v1/qstash/queues", headers=v1).json] == ["q2"]
    sid = client.post(f"/v1/qstash/schedules/{receiver.url()}", headers={**v1, "Upstash-Cron": "0 0 * * *"}).json[
        "scheduleId"
    ]
    assert client.get(f"/v2/schedules/{sid}", headers=v2).json["scheduleId"] == sid
    assert client.delete(f"/v2/messages/{mid}", headers=v2).json == {"cancelled": 1}
    assert client.get(f"/v1/qstash/messages/{mid}", headers=v1).json["state"] == "cancelled"
    failing = Receiver([500])
    try:
        bad = client.post(f"/v1/qstash/publish/{failing.url()}", body=b"x", headers={**v1, "Upstash-Retries": "0"})
        served.settle()
        dlq = client.get("/v2/dlq", headers=v2).json["messages"]
        assert [e["messageId"] for e in dlq] == [bad.json["messageId"]]
        assert client.get(f"/v1/qstash/messages/{bad.json['messageId']}", headers=v1).json["dlqId"] == dlq[0]["dlqId"]
    finally:
        failing.close()


@pytest.fixture
def only_sapiom() -> Iterator[Client]:
    server = ServerThread(Simulator(seed=1), surfaces=default_surfaces(surfaces_on=["sapiom"])).start()
    c = Client("127.0.0.1", server.port)
    yield c
    c.close()
    server.stop()


def test_a_surface_that_is_off_says_how_to_turn_it_on(only_sapiom: Client) -> None:
    r = only_sapiom.post("/v2/publish/https://example.com/x", body=b"x", headers={"Authorization": "Bearer t"})
    assert r.status == 404 and "--surface qstash" in r.error
    assert only_sapiom.post("/v1/qstash/publish/https://example.com/x", body=b"x").status == 200
    with pytest.raises(ValueError, match="unknown surface"):
        default_surfaces(surfaces_on=["grpc"])


def test_serve_with_token_and_surface_options() -> None:
    with serve_proc.serve("--log-level", "error", "--token", "tok_cli=carol", "--surface", "qstash") as server:
        c = Client("127.0.0.1", server.port)
        assert c.get("/v2/queues", headers={"Authorization": "Bearer tok_cli"}).json == []
        assert c.get("/v2/queues", headers={"Authorization": "Bearer nope"}).status == 401
        r = c.post("/v1/qstash/publish/https://example.com/x", body=b"x")
        assert r.status == 404 and "--surface sapiom" in r.error
        assert c.get("/_sim/signing-keys?account=carol").status == 200
        c.close()


@pytest.mark.parametrize("argv", [["--surface", "grpc"], ["--token", ""], ["--token", "t" * 1025]])
def test_bad_surface_and_token_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from qstash_sim.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["serve", *argv])
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_bad_credentials_are_401_before_the_request_is_checked(served: Served, client: Client) -> None:
    """Who is calling is decided first: an unknown token with an invalid request (no Upstash-Cron) is a 401,
    not the 400 a known caller would get."""
    served.on_loop(lambda: served.sim.tokens.add("tok_alice", "alice"))
    target = "/v2/schedules/https%3A%2F%2Fexample.com%2Fwebhook"
    assert client.post(target, headers={"Authorization": "Bearer tok_mallory"}, body=b"null").status == 401
    known = client.post(target, headers={"Authorization": "Bearer tok_alice"}, body=b"null")
    assert known.status == 400 and "Upstash-Cron" in known.error
