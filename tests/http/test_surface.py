"""Surfaces are objects: a second, small surface mounts beside the real ones, with its own operation
called ``publishMessage``, its own authentication and its own hook, and nothing leaks between them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import Client
from qstash_sim import Caller, Simulator
from qstash_sim.api import default_surfaces
from qstash_sim.contract.router import Contract
from qstash_sim.errors import ContractError
from qstash_sim.http.dispatch import Dispatcher
from qstash_sim.http.surface import Ctx, Hook, InboundRequest, Reply, Surface
from qstash_sim.server import ServerThread

MINI_SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mini", "version": "1"},
    "paths": {
        "/mini/publish/{name}": {
            "post": {
                "operationId": "publishMessage",  # the same id as Sapiom's: surfaces do not share handlers
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}


class Stamp(Hook):
    """A hook of the mini surface only: it stamps every answer."""

    def after(self, ctx: Ctx, reply: Reply) -> None:
        reply.headers["X-Mini"] = "yes"


async def mini_publish(ctx: Ctx) -> Reply:
    return Reply({"surface": ctx.surface.name, "name": ctx.params["name"], "account": ctx.caller.account})


def mini_surface() -> Surface:
    return Surface(
        "mini",
        mount=("/mini/",),
        contract=Contract.from_spec(MINI_SPEC),
        handlers={"publishMessage": mini_publish},
        authenticate=lambda req, sim: Caller(account=req.headers.get("X-Mini-User", "nobody")),
        hooks=[Stamp()],
    )


@pytest.fixture
def mini_served() -> Iterator[tuple[ServerThread, Client]]:
    server = ServerThread(Simulator(seed=1), surfaces=[*default_surfaces(), mini_surface()]).start()
    client = Client("127.0.0.1", server.port, check_contract=False)
    yield server, client
    client.close()
    server.stop()


def test_a_second_surface_serves_beside_the_real_ones(mini_served: tuple[ServerThread, Client]) -> None:
    _, client = mini_served
    r = client.post("/mini/publish/hello", headers={"X-Mini-User": "ann"})
    assert r.status == 200 and r.json == {"surface": "mini", "name": "hello", "account": "ann"}
    assert r.headers["X-Mini"] == "yes"
    real = client.post("/v1/qstash/publish/https://example.com/x", body=b"x")
    assert real.status == 200 and real.json["messageId"].startswith("msg_")
    assert "X-Mini" not in real.headers  # the mini surface's hook is its own
    assert client.get("/mini/nothing-here").status == 404
    assert client.get("/mini/publish/hello").status == 405
    assert client.get("/elsewhere").status == 404


def test_the_journal_names_each_operation_and_the_surfaces_own_account(
    mini_served: tuple[ServerThread, Client],
) -> None:
    server, client = mini_served
    client.post("/mini/publish/a", headers={"X-Mini-User": "ann"})
    entries = server.call_soon(lambda: [(e.operation, e.account) for e in server.sim.world.journal.of_kind("request")])
    assert entries == [("publishMessage", "ann")]


def test_a_handler_without_an_operation_or_an_operation_without_a_handler_is_refused() -> None:
    contract = Contract.from_spec(MINI_SPEC)
    with pytest.raises(ContractError, match="operations without handler: publishMessage"):
        Surface("mini", mount=("/mini/",), contract=contract, handlers={})
    with pytest.raises(ContractError, match="handlers without operation: extra"):
        Surface(
            "mini",
            mount=("/mini/",),
            contract=contract,
            handlers={"publishMessage": mini_publish, "extra": mini_publish},
        )


def test_an_operation_outside_the_mount_and_two_surfaces_with_one_name_are_refused() -> None:
    with pytest.raises(ContractError, match="outside its mount"):
        Surface(
            "mini",
            mount=("/other/",),
            contract=Contract.from_spec(MINI_SPEC),
            handlers={"publishMessage": mini_publish},
        )
    with pytest.raises(ValueError, match="two surfaces with the same name"):
        Dispatcher(Simulator(), [mini_surface(), mini_surface()])


async def test_the_dispatcher_needs_no_server() -> None:
    """Framework-neutral: an InboundRequest in, a Response out."""
    from multidict import CIMultiDict, MultiDict

    dispatcher = Dispatcher(Simulator(), [mini_surface()])
    request = InboundRequest("POST", "/mini/publish/x", CIMultiDict({"X-Mini-User": "bo"}), MultiDict())
    response = await dispatcher.dispatch(request)
    assert (response.status, response.headers["X-Mini"]) == (200, "yes")
    assert response.body == b'{"surface":"mini","name":"x","account":"bo"}'
