"""M2/M3: the simulator never delivers to itself: a destination on its own listening port (any loopback
spelling) is refused with 400, so a publish to /_sim/reset resets nothing and no schedule can feed itself."""

from __future__ import annotations

import pytest

from conftest import Client, Served
from qstash_sim import Caller, MessageSettings, PublishCommand, Simulator
from qstash_sim.engine.transport import OutboundRequest, RealTransport, RoutingTransport, VirtualTransport


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.7", "[::1]", "LOCALHOST."])
def test_a_publish_to_the_simulators_own_port_is_refused(served: Served, client: Client, host: str) -> None:
    port = served.server.port
    client.post("/v1/qstash/publish/https://example.com/keep", body=b"x", headers={"Upstash-Delay": "1h"})
    r = client.post(f"/v1/qstash/publish/http://{host}:{port}/_sim/reset", body=b"{}")
    assert r.status == 400 and "this simulator's own address" in r.error
    assert len(served.on_loop(served.sim.messages)) == 1  # nothing was reset, nothing stored


def test_schedules_enqueue_and_batch_items_to_itself_are_refused(served: Served, client: Client) -> None:
    own = f"http://127.0.0.1:{served.server.port}/v1/qstash/batch"
    sched = client.post(f"/v1/qstash/schedules/{own}", body=b"[]", headers={"Upstash-Cron": "* * * * *"})
    assert sched.status == 400 and "own address" in sched.error
    assert client.post(f"/v1/qstash/enqueue/q/{own}", body=b"x").status == 400
    batch = client.post(
        "/v1/qstash/batch",
        json_body=[{"destination": "https://example.com/ok"}, {"destination": own}],
    )
    assert batch.status == 400 and batch.error.startswith("body /1/destination:")
    assert served.on_loop(served.sim.messages) == []  # all or nothing


def test_another_loopback_port_is_still_delivered_for_real(served: Served, client: Client) -> None:
    r = client.post("/v1/qstash/publish/http://127.0.0.1:9/closed", body=b"x", headers={"Upstash-Retries": "0"})
    assert r.status == 200


async def test_the_transport_never_calls_an_own_port_even_for_an_older_message() -> None:
    transport = RoutingTransport(RealTransport(), VirtualTransport(), own_ports={8080})
    out = await transport.send(OutboundRequest("http://127.0.0.1:8080/_sim/reset", "POST", {}, b""), 1000)
    assert out.status is None and out.error == "refused: the destination is the simulator's own address"
    await transport.close()


def test_without_a_server_the_core_knows_no_own_port() -> None:
    sim = Simulator()
    assert sim.own_ports == set()
    sim.publish(Caller(), PublishCommand(MessageSettings("http://127.0.0.1:8080/anything")))
