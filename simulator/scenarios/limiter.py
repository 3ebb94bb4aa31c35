"""What injected 429s look like, and the per-account rate limiter.

Pure functions of their arguments and the virtual time passed in; :mod:`simulator.scenarios` decides when to
use them. Rate-limit headers follow qstash-contract.md §6.3. (An injected 402 is built by the payment feature.)
"""

from __future__ import annotations

import math
from collections.abc import Collection

from qstash_sim.scenarios.model import RateLimited, RateLimits

__all__ = ["DAY_MS", "DEFAULT_BURST_LIMIT", "DEFAULT_DAILY_LIMIT", "RateLimiter", "rate_limited_answer"]

DAY_MS = 86_400_000
DEFAULT_DAILY_LIMIT = 1000  # reported by daily 429s when the scenario sets no per_day
DEFAULT_BURST_LIMIT = 100


def _seconds(ms: int) -> int:
    """Milliseconds rounded up to whole seconds: ``1001`` -> ``2``."""
    return max(0, math.ceil(ms / 1000))


def _next_midnight_ms(now_ms: int) -> int:
    return (now_ms // DAY_MS + 1) * DAY_MS


def _daily_headers(limit: int, remaining: int, now_ms: int) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(_next_midnight_ms(now_ms) // 1000),
    }


def _burst_headers(limit: int, remaining: int, reset_ms: int) -> dict[str, str]:
    return {
        "Burst-RateLimit-Limit": str(limit),
        "Burst-RateLimit-Remaining": str(max(0, remaining)),
        "Burst-RateLimit-Reset": str(_seconds(reset_ms)),
    }


def rate_limited_answer(action: RateLimited, now_ms: int) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, body) of an injected 429. Daily: reset at the next UTC midnight of the virtual clock."""
    if action.style == "daily":
        retry = action.retry_after_ms if action.retry_after_ms is not None else _next_midnight_ms(now_ms) - now_ms
        headers = _daily_headers(action.limit or DEFAULT_DAILY_LIMIT, 0, now_ms)
        message = action.message or f"daily message limit of {action.limit or DEFAULT_DAILY_LIMIT} exceeded"
    else:
        retry = action.retry_after_ms if action.retry_after_ms is not None else 1000
        headers = _burst_headers(action.limit or DEFAULT_BURST_LIMIT, 0, now_ms + retry)
        message = action.message or "too many requests: burst rate limit exceeded"
    headers["Retry-After"] = str(_seconds(retry))
    return headers, {"error": message}


# ---------------------------------------------------------------------------------------------- limiter


class RateLimiter:
    """Per-account request limits on the virtual clock: ``per_second`` in aligned one-second windows,
    ``per_day`` per UTC day; rejected calls do not count. ``exhaustions`` are ``(from_ms, account | None)``:
    from then until the next UTC midnight the account's daily quota reads as used up.
    """

    def __init__(self, limits: RateLimits, exhaustions: Collection[tuple[int, str | None]] = ()) -> None:
        self.limits = limits
        self.exhaustions = list(exhaustions)
        self._ops = None if limits.operations is None else frozenset(limits.operations)
        self._second: dict[str, tuple[int, int]] = {}  # account -> (window second, calls)
        self._day: dict[str, tuple[int, int]] = {}  # account -> (UTC day number, calls)

    def reset(self) -> None:
        """Forget every window."""
        self._second.clear()
        self._day.clear()

    def _exhausted(self, account: str, now_ms: int) -> bool:
        return any(
            start <= now_ms < _next_midnight_ms(start) and who in (None, account) for start, who in self.exhaustions
        )

    def check(self, account: str, operation: str, now_ms: int) -> tuple[bool, dict[str, str]]:
        """Count one call. ``(True, headers with what remains)`` or ``(False, 429 headers incl. Retry-After)``;
        ``(True, {})`` for an operation the limits do not cover."""
        if self._ops is not None and operation not in self._ops:
            return True, {}
        second, day = now_ms // 1000, now_ms // DAY_MS
        exhausted = self._exhausted(account, now_ms)
        daily_limit = self.limits.per_day or (DEFAULT_DAILY_LIMIT if exhausted else None)
        day_window, day_used = self._day.get(account, (day, 0))
        day_used = day_used if day_window == day else 0
        sec_window, sec_used = self._second.get(account, (second, 0))
        sec_used = sec_used if sec_window == second else 0
        if daily_limit is not None and (exhausted or day_used >= daily_limit):
            headers = _daily_headers(daily_limit, 0, now_ms)
            headers["Retry-After"] = str(_seconds(_next_midnight_ms(now_ms) - now_ms))
            return False, headers
        per_second = self.limits.per_second
        if per_second is not None and sec_used >= per_second:
            reset_ms = (second + 1) * 1000
            headers = _burst_headers(per_second, 0, reset_ms)
            headers["Retry-After"] = str(_seconds(reset_ms - now_ms))
            return False, headers
        self._day[account] = (day, day_used + 1)
        self._second[account] = (second, sec_used + 1)
        headers = {}
        if daily_limit is not None:
            headers.update(_daily_headers(daily_limit, daily_limit - day_used - 1, now_ms))
        if per_second is not None:
            headers.update(_burst_headers(per_second, per_second - sec_used - 1, (second + 1) * 1000))
        return True, headers
