"""What the dashboard's views read beyond messages: URL groups and flow-control keys (parts of
``GET /_sim/state``) and ``GET /_sim/schedules/fires`` (the next fire times of each schedule)."""

from __future__ import annotations

from itertools import islice
from typing import Any

from croniter.croniter import CroniterBadDateError

from qstash_sim.base.clock import MAX_TIME_MS
from qstash_sim.domain.flow import FlowKey
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.topic import UrlGroup
from qstash_sim.engine.cron import cron_iter
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["flow_key_state", "next_fires", "schedule_fires", "url_group"]


def url_group(g: UrlGroup) -> dict[str, Any]:
    """``SimUrlGroup``: a URL group and its endpoints, in fan-out order."""
    return {
        "name": g.name,
        "createdAt": g.created_ms,
        "updatedAt": g.updated_ms,
        "endpoints": [{"url": e.url, **({"name": e.name} if e.name else {})} for e in g.endpoints],
    }


def flow_key_state(fk: FlowKey, now: int, limit: int) -> dict[str, Any]:
    """``SimFlowKey``: limits, counters, the ids in flight (sorted) and the first ``limit`` of the waitlist."""
    return {
        "key": fk.key,
        "parallelism": fk.parallelism,
        "rate": fk.rate,
        "period": fk.period_s,
        "inFlight": sorted(fk.in_flight),
        "waitList": list(islice(fk.waiting, limit)),
        "waitListSize": len(fk.waiting),
        "rateCount": fk.rate_count(now),
        "periodStart": fk.period_start_ms,
        "releaseAt": fk.release_at_ms,
        "paused": fk.paused,
        "pinnedParallelism": fk.pinned_parallelism,
        "pinnedRate": fk.pinned_rate,
    }


def next_fires(s: Schedule, now: int, n: int) -> list[int]:
    """The next ``n`` fires of ``s``: its planned ``next_schedule_time`` (when set), then the cron's.

    ``next_fires(<"*/5 * * * *", next at 00:05Z>, now=00:01Z, n=3)`` -> ``[00:05Z, 00:10Z, 00:15Z]`` (as ms).
    """
    out: list[int] = []
    after = now
    if s.next_schedule_time is not None:
        out.append(s.next_schedule_time)
        after = s.next_schedule_time
    try:
        it = cron_iter(s.cron, after)
        while len(out) < n:
            t = round(float(it.get_next(float)) * 1000)
            if t > MAX_TIME_MS:
                break
            out.append(t)
    except (CroniterBadDateError, ValueError):  # no further fire (or a zone this machine lacks)
        pass
    return out[:n]


async def schedule_fires(ctx: Ctx) -> Reply:
    """GET /_sim/schedules/fires[?account=&n=&limit=]"""
    n = int(ctx.query.get("n") or 5)
    limit = int(ctx.query.get("limit") or 100)
    wanted = ctx.query.get("account")
    accounts = ctx.sim.world.accounts
    if wanted:
        found = accounts.find(wanted)
        accs = [found] if found is not None else []
    else:
        accs = list(accounts)
    now = ctx.sim.clock.now_ms()
    out: list[dict[str, Any]] = []
    cut = False
    for acc in accs:
        schedules = list(acc.schedules.values())
        cut = cut or len(schedules) > limit
        for s in schedules[-limit:]:
            out.append(
                {
                    "account": acc.name,
                    "scheduleId": s.schedule_id,
                    "cron": s.cron,
                    "isPaused": s.is_paused,
                    "fires": next_fires(s, now, n),
                }
            )
    body: dict[str, Any] = {"now": now, "schedules": out}
    if cut:
        body["truncated"] = True
    return Reply(body)
