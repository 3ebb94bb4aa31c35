"""``/v2/topics``: URL groups (add and remove endpoints, named or not; list, get, delete)."""

from __future__ import annotations

from typing import Any

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.config import url_at
from qstash_sim.core import topics
from qstash_sim.domain.topic import Endpoint
from qstash_sim.http.headers import check_name
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["add_endpoints", "delete_url_group", "get_url_group", "list_url_groups", "remove_endpoints"]


def _name(ctx: Ctx) -> str:
    return check_name(ctx.params["urlGroupName"], "path urlGroupName")


def _entries(ctx: Ctx) -> list[dict[str, Any]]:
    body = ctx.json if isinstance(ctx.json, dict) else {}
    return list(body.get("endpoints") or [])


async def add_endpoints(ctx: Ctx) -> Reply:
    """POST /v2/topics/{urlGroupName}/endpoints ``{"endpoints": [{"url", "name"?}]}``"""
    name = _name(ctx)
    endpoints = []
    for i, e in enumerate(_entries(ctx)):
        url = url_at(str(e.get("url", "")), f"body /endpoints/{i}/url")
        ep_name = e.get("name")
        if ep_name is not None:
            check_name(ep_name, f"body /endpoints/{i}/name")
        endpoints.append(Endpoint(url, ep_name))
    return Reply(wire.url_group(topics.add_endpoints(ctx.sim, ctx.caller, name, endpoints)))


async def remove_endpoints(ctx: Ctx) -> Reply:
    """DELETE /v2/topics/{urlGroupName}/endpoints ``{"endpoints": [{"url"} | {"name"} | both]}``"""
    name = _name(ctx)
    selectors = [(e.get("url"), e.get("name")) for e in _entries(ctx)]
    return Reply(wire.url_group(topics.remove_endpoints(ctx.sim, ctx.caller, name, selectors)))


async def list_url_groups(ctx: Ctx) -> Reply:
    """GET /v2/topics"""
    return Reply([wire.url_group(g) for g in topics.list_url_groups(ctx.sim, ctx.caller)])


async def get_url_group(ctx: Ctx) -> Reply:
    """GET /v2/topics/{urlGroupName}"""
    return Reply(wire.url_group(topics.get_url_group(ctx.sim, ctx.caller, _name(ctx))))


async def delete_url_group(ctx: Ctx) -> Reply:
    """DELETE /v2/topics/{urlGroupName}"""
    name = _name(ctx)
    topics.delete_url_group(ctx.sim, ctx.caller, name)
    return Reply({"deleted": name})
