"""The one place cron expressions are read: 5 fields, UTC unless a ``CRON_TZ=Zone`` prefix says otherwise.

:func:`check_cron` validates (what a schedule creation answers 400 to), :func:`cron_iter` and
:func:`next_cron_ms` compute fires (the engine). Both split the prefix the same way, with
:func:`split_cron`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import date, datetime
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


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SEARCH_DAYS = 8 * 366  # days a fast plan looks ahead before handing over to croniter (Feb 29 on a Monday...)


class FastUtc:
    """The fires of a plain UTC cron expression (numbers, ranges, steps, lists, names; no ``L``/``W``/``#``),
    computed without croniter: the matching minutes of a day, then the next matching day. Same answers as
    croniter (day-of-month and day-of-week OR-ed when both are restricted, as croniter and Vixie cron do),
    at about 1/50 of the cost: a schedule firing every minute fires 525,600 times a virtual year.
    """

    __slots__ = ("_day_cache", "_doms", "_dows", "_minutes", "_months", "expr")

    def __init__(
        self, expr: str, minutes: list[int], doms: set[int] | None, months: set[int] | None, dows: set[int] | None
    ) -> None:
        self.expr = expr
        self._minutes = minutes  # minute of the day (hour * 60 + minute), sorted
        self._doms, self._months, self._dows = doms, months, dows  # None: any
        self._day_cache: tuple[int, bool] = (-1, False)

    @classmethod
    def build(cls, expr: str) -> FastUtc | None:
        """The fast plan of ``expr``, or ``None`` when it needs croniter."""
        try:
            it = croniter(expr)
        except (ValueError, KeyError):
            return None
        exp = it.expanded
        special = getattr(it, "nth_weekday_of_month", None) or getattr(it, "nearest_weekday", None)
        if (
            special
            or "?" in expr
            or any(
                (not isinstance(v, int) and v != "*") or (v == "*" and len(field) > 1) for field in exp for v in field
            )
        ):
            return None  # L, W, #, ? or a list mixing * with values: croniter's own rules apply

        def values(i: int) -> set[int] | None:
            return None if exp[i] == ["*"] else {int(v) for v in exp[i]}

        mins = values(0) or set(range(60))
        hours = values(1) or set(range(24))
        dows = values(4)
        if dows is not None:
            dows = {d % 7 for d in dows}
        return cls(expr, sorted(h * 60 + m for h in hours for m in mins), values(2), values(3), dows)

    def _day_ok(self, day: int) -> bool:
        cached_day, ok = self._day_cache
        if cached_day == day:
            return ok
        d = date.fromordinal(day + _EPOCH_ORDINAL)
        ok = self._months is None or d.month in self._months
        if ok:
            dom_ok = self._doms is None or d.day in self._doms
            dow_ok = self._dows is None or (d.weekday() + 1) % 7 in self._dows
            if self._doms is not None and self._dows is not None:
                ok = dom_ok or dow_ok
            else:
                ok = dom_ok and dow_ok
        self._day_cache = (day, ok)
        return ok

    def next_after(self, after_ms: int) -> int | None:
        """The first fire strictly after ``after_ms``, or ``None`` when none comes within the search window."""
        t = after_ms // 60_000 + 1
        day, minute = divmod(t, 1440)
        minutes = self._minutes
        for _ in range(_SEARCH_DAYS):
            if self._day_ok(day):
                i = bisect_left(minutes, minute)
                if i < len(minutes):
                    return (day * 1440 + minutes[i]) * 60_000
            day, minute = day + 1, 0
        return None


class CronFires:
    """When each schedule fires next, from one cached plan per schedule (parsing is the slow part): a
    :class:`FastUtc` for a plain UTC expression, else a ``croniter``.

    Keyed by ``(account, schedule id)`` and checked against the schedule object and its ``generation``, so
    an overwritten schedule gets a fresh iterator. A schedule whose next fire is after the clock's range
    (year 9999) has none: ``None``.
    """

    def __init__(self) -> None:
        self._its: dict[tuple[str, str], tuple[Schedule, int, croniter | FastUtc]] = {}

    def first(self, schedule: Schedule, now_ms: int) -> int | None:
        """Plan ``schedule`` afresh: its first fire after ``now_ms`` (``ValueError`` for a bad zone)."""
        it = self._plan(schedule.cron, now_ms)
        self._its[(schedule.account, schedule.schedule_id)] = (schedule, schedule.generation, it)
        return self._next(it, now_ms)

    @staticmethod
    def _plan(cron: str, after_ms: int) -> croniter | FastUtc:
        zone, expr = split_cron(cron)
        fast = FastUtc.build(expr) if zone == "UTC" else None
        return fast if fast is not None else cron_iter(cron, after_ms)

    def after(self, schedule: Schedule, fire_ms: int) -> int | None:
        """The fire after the one at ``fire_ms`` (never the same instant twice)."""
        key = (schedule.account, schedule.schedule_id)
        cached = self._its.get(key)
        if cached is None or cached[0] is not schedule or cached[1] != schedule.generation:
            cached = (schedule, schedule.generation, self._plan(schedule.cron, fire_ms))
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
    def _next(it: croniter | FastUtc, after_ms: int) -> int | None:
        if isinstance(it, FastUtc):
            try:
                due = it.next_after(after_ms)
            except (ValueError, OverflowError):  # past year 9999: no next fire
                return None
            if due is not None:
                return due if due <= MAX_TIME_MS else None
            it = cron_iter(it.expr, after_ms)  # nothing within the window: let croniter search
        try:
            due = round(it.get_next(float) * 1000)
            while due <= after_ms:
                due = round(it.get_next(float) * 1000)
        except (ValueError, OverflowError, CroniterBadDateError):  # past year 9999: no next fire
            return None
        return due if due <= MAX_TIME_MS else None
