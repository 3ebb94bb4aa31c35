"""The simulator's control plane (``/_sim/...``): reset, state, ledger, journal, inbox, clock, keys."""

from __future__ import annotations

from typing import Any

from qstash_sim.api import wire as serialize
from qstash_sim.base.clock import VirtualClock, format_ms
from qstash_sim.base.version import __version__
from qstash_sim.engine.engine import AdvanceLimitError
from qstash_sim.errors import BadRequest
from qstash_sim.http.surface import Ctx, Reply


def _clock(ctx: Ctx) -> dict[str, Any]:
    now = ctx.sim.clock.now_ms()
    return {
        "now": now,
        "iso": format_ms(now),
        "virtual": ctx.sim.clock.is_virtual,
        "pendingEvents": ctx.sim.engine.pending_events,
    }


def _account(ctx: Ctx) -> str:
    return ctx.query.get("account") or "default"


async def health(ctx: Ctx) -> Reply:
    """GET /_sim/health"""
    return Reply(
        {
            "ok": True,
            "version": __version__,
            "seed": ctx.sim.seed,
            "clock": "virtual" if ctx.sim.clock.is_virtual else "real",
        }
    )


async def reset(ctx: Ctx) -> Reply:
    """POST /_sim/reset {"seed"?: int, "now"?: ms}"""
    body = ctx.json or {}
    seed, now = body.get("seed"), body.get("now")
    # JSON Schema's integer admits 1768.0: normalise (a float seed would also change every id)
    ctx.sim.reset(seed=None if seed is None else int(seed), now_ms=None if now is None else int(now))
    return Reply({"ok": True, "seed": ctx.sim.seed})


async def state(ctx: Ctx) -> Reply:
    """GET /_sim/state[?account=]"""
    wanted = ctx.query.get("account")
    out: dict[str, Any] = {}
    for acc in ctx.sim.world.accounts:
        if wanted and acc.name != wanted:
            continue
        out[acc.name] = {
            "messages": [serialize.message(m) for m in acc.messages.values()],
            "queues": [serialize.queue(q) for q in acc.queues.values()],
            "schedules": [serialize.schedule(s) for s in acc.schedules.values()],
            "dlq": [serialize.dlq_entry(e) for e in acc.dlq.values()],
            "signingKeys": {"current": acc.signing_keys.current, "next": acc.signing_keys.next},
        }
    return Reply({"accounts": out})


async def ledger(ctx: Ctx) -> Reply:
    """GET /_sim/ledger[?account=&agent=]"""
    return Reply(serialize.ledger(ctx.sim.world.ledger, account=ctx.query.get("account"), agent=ctx.query.get("agent")))


async def journal(ctx: Ctx) -> Reply:
    """GET /_sim/journal[?kind=&since=&account=]"""
    kind = ctx.query.get("kind")
    account = ctx.query.get("account")
    since = ctx.query.get("since", 0)
    entries = [
        serialize.journal_entry(e)
        for e in ctx.sim.world.journal
        if e.seq > since
        and (kind is None or e.kind == kind)
        and (account is None or e.account == account)
        and e is not ctx.entry
    ]
    return Reply({"entries": entries})


async def deliveries(ctx: Ctx) -> Reply:
    """GET /_sim/deliveries[?account=&url=]"""
    account = ctx.query.get("account")
    url = ctx.query.get("url")
    return Reply(
        {
            "deliveries": [
                serialize.delivery(d)
                for d in ctx.sim.world.inbox
                if (account is None or d.account == account) and (url is None or d.url == url)
            ]
        }
    )


async def clock(ctx: Ctx) -> Reply:
    """GET /_sim/clock"""
    return Reply(_clock(ctx))


async def clock_advance(ctx: Ctx) -> Reply:
    """POST /_sim/clock/advance {"by": "31h"}"""
    if not isinstance(ctx.sim.clock, VirtualClock):
        raise BadRequest("body /by: the server runs on the real clock; start it with --clock virtual to advance time")
    by = ctx.json["by"]
    try:
        await ctx.sim.advance(by)
    except AdvanceLimitError as exc:  # over the span (nothing ran), or stopped at the event cap (kept)
        raise BadRequest(f"body /by: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise BadRequest(
            f"body /by: expected a duration such as 31h, 1d10h30m or a number of seconds ({exc})"
        ) from None
    return Reply(_clock(ctx))


async def settle(ctx: Ctx) -> Reply:
    """POST /_sim/settle"""
    await ctx.sim.settle()
    return Reply(_clock(ctx))


def _keys(ctx: Ctx, name: str) -> Reply:
    keys = ctx.sim.account(name).signing_keys
    return Reply({"account": name, "current": keys.current, "next": keys.next})


async def signing_keys(ctx: Ctx) -> Reply:
    """GET /_sim/signing-keys[?account=]"""
    return _keys(ctx, _account(ctx))


async def rotate_signing_keys(ctx: Ctx) -> Reply:
    """POST /_sim/signing-keys/rotate[?account=]"""
    name = _account(ctx)
    ctx.sim.rotate_signing_keys(name)
    return _keys(ctx, name)
