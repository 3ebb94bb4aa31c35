"""The one place cron expressions are read: 5 fields, UTC unless a ``CRON_TZ=Zone`` prefix says otherwise.

:func:`check_cron` validates (what a schedule creation answers 400 to), :func:`cron_iter` and
:func:`next_cron_ms` compute fires (the engine). Both split the prefix the same way, with
:func:`split_cron`.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError

from qstash_sim.base.clock import MAX_TIME_MS
from qstash_sim.domain.schedule import Schedule
from qstash_sim.errors import BadRequest

__all__ = ["CronFires", "check_cron", "cron_iter", "next_cron_ms", "split_cron"]

_TZ_RE = re.compile(r"^\s*CRON_TZ=(\S+)\s+(.*)$", re.DOTALL)
_UTC = ZoneInfo("UTC")


def split_cron(cron: str) -> tuple[str, str]:
    """``"CRON_TZ=Europe/Paris 0 9 * * *"`` -> ``("Europe/Paris", "0 9 * * *")``; no prefix -> ``("UTC", cron)``."""
    m = _TZ_RE.match(cron)
    if m:
        return m.group(1), m.group(2).strip()
    return "UTC", cron.strip()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def cron_iter(cron: str, after_ms: int) -> croniter:
    """An iterator of the fires of ``cron`` after ``after_ms`` (``ValueError`` for an unknown zone)."""
    zone, expr = split_cron(cron)
    tz = _UTC if zone == "UTC" else _zone(zone)
    return croniter(expr, datetime.fromtimestamp(after_ms / 1000, tz=tz))


def next_cron_ms(cron: str, after_ms: int) -> int:
    """The first fire of ``cron`` strictly after ``after_ms``, honouring a ``CRON_TZ=Zone `` prefix.

    ``next_cron_ms("*/5 * * * *", 1767225600000)`` -> ``1767225900000`` (00:05Z).
    """
    return round(float(cron_iter(cron, after_ms).get_next(float)) * 1000)


def check_cron(cron: str, where: str, now_ms: int | None = None) -> tuple[str, str]:
    """Validate a cron expression; raise ``BadRequest`` naming ``where`` and the problem.

    ``check_cron("0 0 31 2 *", "header Upstash-Cron")`` raises: the expression is valid syntax but never
    fires (there is no February 31st).
    """
    zone, expr = split_cron(cron)
    try:
        _zone(zone)
    except ValueError:
        raise BadRequest(
            f"{where}: unknown time zone {zone!r} in CRON_TZ (expected an IANA name such as Europe/Berlin)"
        ) from None
    fields = expr.split()
    if len(fields) != 5:
        raise BadRequest(
            f"{where}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)} in {expr!r}"
        )
    if not croniter.is_valid(expr):
        raise BadRequest(f"{where}: invalid cron expression {expr!r}")
    try:
        next_cron_ms(cron, 0 if now_ms is None else now_ms)
    except (CroniterBadDateError, ValueError, OverflowError):
        raise BadRequest(f"{where}: cron expression {expr!r} never fires (no such date)") from None
    return zone, expr


class CronFires:
    """When each schedule fires next, from one cached ``croniter`` per schedule (parsing is the slow part).

    Keyed by ``(account, schedule id)`` and checked against the schedule object and its ``generation``, so
    an overwritten schedule gets a fresh iterator. A schedule whose next fire is after the clock's range
    (year 9999) has none: ``None``.
    """

    def __init__(self) -> None:
        self._its: dict[tuple[str, str], tuple[Schedule, int, croniter]] = {}

    def first(self, schedule: Schedule, now_ms: int) -> int | None:
        """Plan ``schedule`` afresh: its first fire after ``now_ms`` (``ValueError`` for a bad zone)."""
        it = cron_iter(schedule.cron, now_ms)
        self._its[(schedule.account, schedule.schedule_id)] = (schedule, schedule.generation, it)
        return self._next(it, now_ms)

    def after(self, schedule: Schedule, fire_ms: int) -> int | None:
        """The fire after the one at ``fire_ms`` (never the same instant twice)."""
        key = (schedule.account, schedule.schedule_id)
        cached = self._its.get(key)
        if cached is None or cached[0] is not schedule or cached[1] != schedule.generation:
            cached = (schedule, schedule.generation, cron_iter(schedule.cron, fire_ms))
            self._its[key] = cached
        return self._next(cached[2], fire_ms)

    def forget(self, schedule: Schedule) -> None:
        """Drop ``schedule``'s iterator (it was deleted)."""
        key = (schedule.account, schedule.schedule_id)
        if key in self._its and self._its[key][0] is schedule:
            del self._its[key]

    def clear(self) -> None:
        """Drop every iterator."""
        self._its.clear()

    @staticmethod
    def _next(it: croniter, after_ms: int) -> int | None:
        try:
            due = round(it.get_next(float) * 1000)
            while due <= after_ms:
                due = round(it.get_next(float) * 1000)
        except (ValueError, OverflowError, CroniterBadDateError):  # past year 9999: no next fire
            return None
        return due if due <= MAX_TIME_MS else None
