"""Duration parsing: ``Upstash-Delay``/``Upstash-Timeout`` values, Go durations, and Python deltas.

Every result is an integer number of milliseconds, the simulator's unit of time.

>>> parse_duration("1d10h30m")
124200000
>>> parse_duration("6m5s")
365000
>>> parse_duration("30")  # a plain number is seconds
30000
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta
from fractions import Fraction

__all__ = ["parse_duration", "to_ms"]

# Unit -> milliseconds, as exact fractions so that "1.5h" or "1500us" never pick up float error.
_UNIT_MS: dict[str, Fraction] = {
    "ns": Fraction(1, 1_000_000),
    "us": Fraction(1, 1_000),
    "µs": Fraction(1, 1_000),  # U+00B5 MICRO SIGN, as Go spells it
    "μs": Fraction(1, 1_000),  # U+03BC GREEK SMALL LETTER MU, also accepted by Go
    "ms": Fraction(1),
    "s": Fraction(1_000),
    "m": Fraction(60_000),
    "h": Fraction(3_600_000),
    "d": Fraction(86_400_000),  # not Go, but Upstash-Delay accepts days ("1d10h30m")
}
# Longer units first so that "ms" is not read as "m" followed by garbage.
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_EXPECTED = (
    "expected a number of seconds (e.g. '30') or number+unit parts such as '50s', '500ms', '2m', "
    "'1d10h30m', '1.5h' (units: ns, us, µs, ms, s, m, h, d)"
)


def parse_duration(text: str) -> int:
    """Parse a duration into whole milliseconds (fractions of a millisecond are dropped).

    Accepted forms::

        "50s"       -> 50000
        "500ms"     -> 500
        "2m"        -> 120000
        "1d10h30m"  -> 124200000
        "6m5s"      -> 365000        (Go duration, as in Retry-After)
        "1.5h"      -> 5400000
        "250us"     -> 0
        "30"        -> 30000         (plain number: seconds)
        "0"         -> 0

    Raises ``ValueError`` naming the bad text and the expected form.
    """
    if not isinstance(text, str):
        raise TypeError(f"duration must be a str, got {type(text).__name__}")
    return _parse(text)


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> int:
    # Cached: clients send the same few values (``10s``, ``30s``) on every request, and exact
    # Fraction arithmetic is the costly part of a publish otherwise.
    s = text.strip()
    if not s:
        raise ValueError(f"invalid duration {text!r}: empty; {_EXPECTED}")
    if _NUMBER.fullmatch(s):
        return int(Fraction(s) * 1000)
    total = Fraction(0)
    pos = 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += Fraction(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        bad = s[pos:] or s
        raise ValueError(f"invalid duration {text!r}: cannot read {bad!r}; {_EXPECTED}")
    return int(total)


def to_ms(delta: timedelta | float | str) -> int:
    """A delta in milliseconds: ``timedelta``, seconds as ``int``/``float``, or a duration string.

    ``to_ms(timedelta(minutes=2))`` -> ``120000``; ``to_ms(1.5)`` -> ``1500``; ``to_ms("2m")`` -> ``120000``.
    Anything else (``None``, ``bool``, a list...) raises ``TypeError``.
    """
    if isinstance(delta, timedelta):
        return delta // timedelta(milliseconds=1)
    if isinstance(delta, bool):  # bool is an int; True seconds is surely a mistake
        raise TypeError("delta must be timedelta, int/float seconds or a duration string, got bool")
    if isinstance(delta, int):
        return delta * 1000
    if isinstance(delta, float):
        if not math.isfinite(delta):
            raise ValueError(f"delta must be a finite number of seconds, got {delta!r}")
        return round(delta * 1000)
    if isinstance(delta, str):
        return parse_duration(delta)
    raise TypeError(f"delta must be timedelta, int/float seconds or a duration string, got {type(delta).__name__}")
