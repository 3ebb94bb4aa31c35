"""Signatures under a time-freezing library: a receiver in the test process accepts them.

Real-socket deliveries are signed with the process clock (``time.time()``), which freezegun and
time-machine move like every other reading in the process; the simulator's own virtual clock is never
touched by them. (A delivery to a virtual destination is signed with the virtual clock.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from freezegun import freeze_time
from qstash import Receiver as QstashReceiver

from conftest import Client, Receiver
from qstash_sim import Simulator
from qstash_sim.base.clock import DEFAULT_START_MS, VirtualClock
from qstash_sim.server import ServerThread

FROZEN = datetime(2020, 5, 5, 12, 0, tzinfo=UTC)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


FREEZERS: dict[str, Callable[[], AbstractContextManager[Any]]] = {
    "freezegun": lambda: freeze_time(FROZEN, real_asyncio=True),
    "time-machine": lambda: time_machine.travel(FROZEN, tick=False),
}


@pytest.fixture
def served_and_receiver() -> Iterator[tuple[ServerThread, Receiver]]:
    server = ServerThread(Simulator(seed=1, clock=VirtualClock(DEFAULT_START_MS))).start()
    receiver = Receiver()
    yield server, receiver
    receiver.close()
    server.stop()


@pytest.mark.parametrize("freezer", list(FREEZERS))
def test_a_receiver_in_a_frozen_test_accepts_loopback_signatures(
    freezer: str, served_and_receiver: tuple[ServerThread, Receiver]
) -> None:
    server, receiver = served_and_receiver
    client = Client("127.0.0.1", server.port)
    url = receiver.url("/frozen")
    with FREEZERS[freezer]():
        r = client.post(f"/v1/qstash/publish/{url}", body=b'{"hi":1}', headers={"Content-Type": "application/json"})
        assert r.status == 200
        server.call(server.sim.settle)
        [got] = receiver.received
        token = got["headers"]["Upstash-Signature"]
        keys = server.call_soon(lambda: server.sim.account("default").signing_keys)
        verifier = QstashReceiver(current_signing_key=keys.current, next_signing_key=keys.next)
        verifier.verify(signature=token, body=got["body"].decode(), url=url)  # raises if rejected
        assert _claims(token)["iat"] == int(FROZEN.timestamp())
    client.close()
    # the simulator's virtual clock did not move with the frozen time
    assert server.call_soon(server.sim.clock.now_ms) == DEFAULT_START_MS


def test_sign_clock_virtual_signs_real_deliveries_with_the_simulator_clock() -> None:
    server = ServerThread(Simulator(seed=1, clock=VirtualClock(DEFAULT_START_MS), sign_clock="virtual")).start()
    receiver = Receiver()
    try:
        client = Client("127.0.0.1", server.port)
        assert client.post(f"/v1/qstash/publish/{receiver.url()}", body=b"x").status == 200
        server.call(server.sim.settle)
        [got] = receiver.received
        assert _claims(got["headers"]["Upstash-Signature"])["iat"] == DEFAULT_START_MS // 1000
        client.close()
    finally:
        receiver.close()
        server.stop()


def test_an_unknown_sign_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="sign_clock must be 'process', 'virtual' or a Clock"):
        Simulator(sign_clock="wall")  # type: ignore[arg-type]
