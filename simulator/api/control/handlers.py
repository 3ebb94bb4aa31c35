"""The simulator's control plane (``/_sim/...``): reset, state, ledger, journal, inbox, clock, keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from itertools import dropwhile, islice
from typing import Any, TypeVar

from qstash_sim.api import wire as serialize
from qstash_sim.api.control import views
from qstash_sim.base.clock import VirtualClock, format_ms
from qstash_sim.base.version import __version__
from qstash_sim.domain.message import Message
from qstash_sim.engine.engine import AdvanceLimitError
from qstash_sim.errors import BadRequest, NotFound
from qstash_sim.http.surface import Ctx, Reply

T = TypeVar("T")

PAGE_LIMIT = 1000  # entries per page of /_sim/journal and /_sim/deliveries unless ?limit= (at most 10000)
PAGE_SCAN = 50_000  # entries one page looks at, at most: a filter that matches little ends the page early
# The time one page may hold the server up, building and encoding it, before it ends early (with a
# cursor), whatever the entries weigh (a delivery carries its body and signed headers); ``None``: no
# budget. Only where pages end depends on it; following the cursors still gives every entry once. The
# JSON encoding comes after the handler, so a page stops building at PAGE_BUDGET_S / factor, the factor
# being (build + encode) / build as measured for each kind, rounded up: journal entries 1.5 (attempts)
# to 3 (plain requests), deliveries 4 (their signed headers and bodies make most of the bytes).
PAGE_BUDGET_S: float | None = 0.03
_JOURNAL_FACTOR, _DELIVERIES_FACTOR = 3.0, 4.0


def _window(ctx: Ctx, newest: int) -> tuple[int, int]:
    """``(after, upto)``: a page holds items numbered in ``(after, upto]``.

    ``after`` is the later of ``since`` and the cursor's position; ``upto`` comes with the cursor (the
    newest item when the first page was asked for, ``newest`` now otherwise), so that paging ends even
    while items keep coming (each page read is itself journalled): newer ones are for the next read.
    """
    since = int(ctx.query.get("since") or 0)
    cursor = ctx.query.get("cursor")
    if not cursor:
        return since, newest
    pos, _, end = cursor.partition(".")
    return max(since, int(pos)), (int(end) if end else newest)


def _page(
    items: Iterator[tuple[int, T]],
    *,
    upto: int,
    limit: int,
    keep: Callable[[T], bool],
    render: Callable[[T], dict[str, Any]],
    factor: float,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` rendered items that ``keep`` admits, and the cursor to go on from (``None``: done).

    Looks at :data:`PAGE_SCAN` items at most, and stops once ``PAGE_BUDGET_S / factor`` has been spent
    (after one item at least), so the cost of a page is bounded whatever the filters and the entries' sizes.
    """
    out: list[dict[str, Any]] = []
    scanned = 0
    last: int | None = None
    budget = PAGE_BUDGET_S
    clock = time.perf_counter
    deadline = clock() + budget / factor if budget is not None else None
    for seq, item in items:
        if seq > upto:
            break
        if last is not None and (
            len(out) >= limit or scanned >= PAGE_SCAN or (deadline is not None and clock() > deadline)
        ):
            return out, f"{last}.{upto}"
        scanned += 1
        last = seq
        if keep(item):
            out.append(render(item))
    return out, None


def _newest(values: Collection[T], limit: int) -> tuple[list[T], bool]:
    """The newest ``limit`` of ``values`` (oldest first), and whether some were left out."""
    if len(values) <= limit:
        return list(values), False
    return list(islice(reversed(values), limit))[::-1], True  # type: ignore[call-overload]


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
    """GET /_sim/health: liveness, plus the retention limits and what they dropped (all O(1))."""
    world = ctx.sim.world
    lim, ev = world.limits, world.evictions()
    return Reply(
        {
            "ok": True,
            "version": __version__,
            "seed": ctx.sim.seed,
            "clock": "virtual" if ctx.sim.clock.is_virtual else "real",
            "limits": {
                "journal": lim.journal,
                "deliveries": lim.deliveries,
                "messages": lim.messages,
                "dlqPerAccount": lim.dlq_per_account,
                "dedupPerAccount": lim.dedup_per_account,
                "accounts": lim.accounts,
                "ledger": lim.ledger,
                "inFlight": lim.in_flight,
            },
            "evicted": {
                "journal": ev["journal"],
                "deliveries": ev["deliveries"],
                "messages": ev["messages"],
                "dlq": ev["dlq"],
                "dedup": ev["dedup"],
                "dedupExpired": ev["dedup_expired"],
                "accounts": ev["accounts"],
                "ledger": ev["ledger"],
            },
        }
    )


async def reset(ctx: Ctx) -> Reply:
    """POST /_sim/reset {"seed"?: int, "now"?: ms, "order"?: "seq" | "shuffle"}"""
    body = ctx.json or {}
    seed, now = body.get("seed"), body.get("now")
    # JSON Schema's integer admits 1768.0: normalise (a float seed would also change every id)
    ctx.sim.reset(seed=None if seed is None else int(seed), now_ms=None if now is None else int(now))
    if "order" in body:
        ctx.sim.order = body["order"]
    return Reply({"ok": True, "seed": ctx.sim.seed, "order": ctx.sim.order})


async def state(ctx: Ctx) -> Reply:
    """GET /_sim/state[?account=&limit=]: each list (and the accounts) cut to its newest ``limit``."""
    wanted = ctx.query.get("account")
    limit = int(ctx.query.get("limit") or PAGE_LIMIT)
    accounts = ctx.sim.world.accounts
    now = ctx.sim.clock.now_ms()
    if wanted:
        found = accounts.find(wanted)
        accs, cut = ([found] if found is not None else []), False
    else:
        accs, cut = _newest(list(accounts), limit)
    out: dict[str, Any] = {}
    for acc in accs:
        messages, m_cut = _newest(acc.messages.values(), limit)
        queues, q_cut = _newest(acc.queues.values(), limit)
        schedules, s_cut = _newest(acc.schedules.values(), limit)
        dlq, d_cut = _newest(acc.dlq.values(), limit)
        cut = cut or m_cut or q_cut or s_cut or d_cut
        out[acc.name] = {
            "messages": [serialize.message(m) for m in messages],
            "queues": [serialize.queue(q) for q in queues],
            "schedules": [serialize.schedule(s) for s in schedules],
            "dlq": [serialize.dlq_entry(e) for e in dlq],
            "signingKeys": {"current": acc.signing_keys.current, "next": acc.signing_keys.next},
            "urlGroups": [views.url_group(g) for g in acc.url_groups.values()],
            "flowControl": [views.flow_key_state(acc.flow_keys[k], now, limit) for k in sorted(acc.flow_keys)],
        }
    body: dict[str, Any] = {"accounts": out}
    if cut:
        body["truncated"] = True
    return Reply(body)


async def messages(ctx: Ctx) -> Reply:
    """GET /_sim/messages?account=[&cursor=&limit=]: one page of an account's messages, newest first."""
    name = ctx.query["account"]
    acc = ctx.sim.world.accounts.find(name)
    if acc is None:
        raise NotFound(f"query account: no account {name}")
    limit = int(ctx.query.get("limit") or PAGE_LIMIT)
    cursor = ctx.query.get("cursor")
    newest_first: Iterator[Message] = reversed(acc.messages.values())
    if cursor:
        if cursor not in acc.messages:
            raise BadRequest(f"query cursor: message {cursor} is not kept (any more) in account {name}; start again")
        newest_first = dropwhile(lambda m: m.message_id != cursor, newest_first)
        next(newest_first)
    page = list(islice(newest_first, limit + 1))
    body: dict[str, Any] = {"messages": [serialize.message(m) for m in page[:limit]], "total": len(acc.messages)}
    if len(page) > limit:
        body["cursor"] = page[limit - 1].message_id
    return Reply(body)


async def ledger(ctx: Ctx) -> Reply:
    """GET /_sim/ledger[?account=&agent=&limit=]: exact totals, the newest ``limit`` entries kept."""
    q = ctx.query
    limit = int(q["limit"]) if q.get("limit") else None
    return Reply(serialize.ledger(ctx.sim.world.ledger, account=q.get("account"), agent=q.get("agent"), limit=limit))


async def journal(ctx: Ctx) -> Reply:
    """GET /_sim/journal[?kind=&since=&account=&cursor=&limit=]: one page, in seq order."""
    kind = ctx.query.get("kind")
    account = ctx.query.get("account")
    log = ctx.sim.world.journal.entries
    # This request's own entry is the newest: left out (it is shown by the next read).
    after, upto = _window(ctx, ctx.entry.seq - 1 if ctx.entry.seq == log.appended else log.appended)
    entries, cursor = _page(
        log.since(after),
        upto=upto,
        limit=int(ctx.query.get("limit") or PAGE_LIMIT),
        keep=lambda e: (kind is None or e.kind == kind) and (account is None or e.account == account),
        render=serialize.journal_entry,
        factor=_JOURNAL_FACTOR,
    )
    body: dict[str, Any] = {"entries": entries}
    if cursor is not None:
        body["cursor"] = cursor
    return Reply(body)


async def deliveries(ctx: Ctx) -> Reply:
    """GET /_sim/deliveries[?account=&url=&since=&cursor=&limit=]: one page, in seq order."""
    account = ctx.query.get("account")
    url = ctx.query.get("url")
    inbox = ctx.sim.world.inbox
    after, upto = _window(ctx, inbox.appended)
    deliveries, cursor = _page(
        inbox.since(after),
        upto=upto,
        limit=int(ctx.query.get("limit") or PAGE_LIMIT),
        keep=lambda d: (account is None or d.account == account) and (url is None or d.url == url),
        render=serialize.delivery,
        factor=_DELIVERIES_FACTOR,
    )
    body: dict[str, Any] = {"deliveries": deliveries}
    if cursor is not None:
        body["cursor"] = cursor
    return Reply(body)


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


async def accounts(ctx: Ctx) -> Reply:
    """GET /_sim/accounts[?limit=]: the newest ``limit`` accounts with their signing keys and what they hold."""
    accs, cut = _newest(list(ctx.sim.world.accounts), int(ctx.query.get("limit") or PAGE_LIMIT))
    return Reply(
        {
            "accounts": [
                {
                    "name": a.name,
                    "current": a.signing_keys.current,
                    "next": a.signing_keys.next,
                    "messages": len(a.messages),
                    "queues": len(a.queues),
                    "schedules": len(a.schedules),
                    "dlq": len(a.dlq),
                }
                for a in accs
            ],
            "truncated": cut,
        }
    )
