"""Checking cron expressions the way QStash reads them: 5 fields, UTC, optional ``CRON_TZ=Zone`` prefix."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qstash_sim.errors import BadRequest

_TZ_RE = re.compile(r"^\s*CRON_TZ=(\S+)\s+(.*)$")


def split_cron(cron: str) -> tuple[str, str]:
    """``"CRON_TZ=Europe/Paris 0 9 * * *"`` -> ``("Europe/Paris", "0 9 * * *")``; no prefix -> ``("UTC", cron)``."""
    m = _TZ_RE.match(cron)
    if m:
        return m.group(1), m.group(2).strip()
    return "UTC", cron.strip()


def check_cron(cron: str, where: str) -> tuple[str, str]:
    """Validate a cron expression; raise ``BadRequest`` naming ``where`` and the problem."""
    from croniter import croniter  # imported here: keeps croniter off the server's start-up path

    zone, expr = split_cron(cron)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"{where}: unknown time zone {zone!r} in CRON_TZ (expected an IANA name such as Europe/Berlin)") from None
    fields = expr.split()
    if len(fields) != 5:
        raise BadRequest(
            f"{where}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)} in {expr!r}"
        )
    if not croniter.is_valid(expr):
        raise BadRequest(f"{where}: invalid cron expression {expr!r}")
    return zone, expr
