"""Assertion helpers that read like the domain and explain a miss like a near-miss report.

Every function here works on a *snapshot* (lists of the simulator's dataclasses) taken on the server's
loop by :mod:`conftest_plugin.handle`; none of them touches the network or a clock. A failed check
raises :class:`QstashSimAssertionError`, whose message says what was expected, what happened instead,
and, when there is an obvious one, what to do (advance the clock, fix a URL).

A near miss reads like this::

    expected 1 delivery to https://api.example.com/fulfillment with json ⊇ {"orderId": "ord_456"}, found 0.
    Closest of 4 other deliveries in the inbox:
      1. POST https://api.example.com/fulfilment -> 200 at 2026-01-01T00:00:00.000Z [msg_..., attempt 1, virtual] ...
           url differs: https://api.example.com/fulfilment
           did you mean to='https://api.example.com/fulfilment'?
"""

from __future__ import annotations

import difflib
import fnmatch
import json as _json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from qstash_sim.base.clock import format_ms
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.domain.ledger import LedgerEntry
from qstash_sim.domain.message import Delivery, DlqEntry, EventState, Message, MessageState

__all__ = [
    "DeliveryFilter",
    "QstashSimAssertionError",
    "check_delivered",
    "check_in_dlq",
    "check_max_in_flight",
    "check_not_delivered",
    "check_spent",
    "check_states",
]

_MAX_CANDIDATES = 5
_MISSING = object()


class QstashSimAssertionError(AssertionError):
    """A qstash-sim assertion failed; the message lists what happened instead, closest first."""


# ---------------------------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """What a delivery must look like. ``None`` fields match anything.

    ``to`` is an exact URL, a glob (``"https://api.example.com/*"``) or a compiled regex (searched);
    ``json`` is a subset match for objects (every given key present with an equal value, recursively),
    an equality match otherwise; ``body`` is the exact body (``str`` or ``bytes``); ``headers`` is a
    case-insensitive subset match.
    """

    to: str | re.Pattern[str] | None = None
    json: Any = _MISSING
    body: bytes | None = None
    headers: Mapping[str, str] | None = None
    method: str | None = None
    message_id: str | None = None

    @classmethod
    def make(
        cls,
        to: str | re.Pattern[str] | None,
        json: Any,
        body: str | bytes | None,
        headers: Mapping[str, str] | None,
        method: str | None,
        message_id: str | None,
    ) -> DeliveryFilter:
        """Build a filter, normalising ``body`` to bytes and ``method`` to upper case."""
        raw = body.encode() if isinstance(body, str) else body
        return cls(to, json, raw, headers, method.upper() if method else None, message_id)

    def describe(self) -> str:
        """``to https://api.example.com/fulfillment with json ⊇ {"orderId": "ord_456"}``."""
        parts = []
        if self.method:
            parts.append(self.method)
        if self.to is not None:
            parts.append(f"to {self.to.pattern!r} (regex)" if isinstance(self.to, re.Pattern) else f"to {self.to}")
        if self.message_id:
            parts.append(f"of message {self.message_id}")
        if self.json is not _MISSING:
            parts.append(f"with json ⊇ {_dump(self.json)}")
        if self.body is not None:
            parts.append(f"with body {_short(self.body)}")
        if self.headers:
            parts.append(f"with headers ⊇ {dict(self.headers)!r}")
        return " ".join(parts) or "(any)"

    def misses(self, d: Delivery) -> list[str]:
        """Why ``d`` does not match, one reason per mismatching field (empty when it matches)."""
        out: list[str] = []
        if self.to is not None and not _url_matches(self.to, d.url):
            out.append(f"url differs: {d.url}")
        if self.method and d.method.upper() != self.method:
            out.append(f"method is {d.method}, not {self.method}")
        if self.message_id and d.message_id != self.message_id:
            out.append(f"message is {d.message_id}")
        if self.json is not _MISSING:
            try:
                got = _json.loads(d.body)
            except ValueError:
                out.append(f"body is not JSON: {_short(d.body)}")
            else:
                out.extend(f"json {p}" for p in _json_misses(self.json, got, ""))
        if self.body is not None and d.body != self.body:
            out.append(f"body differs: {_short(d.body)}")
        if self.headers:
            lower = {k.lower(): v for k, v in d.headers.items()}
            for k, v in self.headers.items():
                have = lower.get(k.lower())
                if have is None:
                    out.append(f"header {k} missing")
                elif have != v:
                    out.append(f"header {k} is {have!r}, not {v!r}")
        return out

    def closeness(self, d: Delivery) -> float:
        """How close ``d`` is (higher is closer): URL similarity first, then the other fields."""
        score = 0.0
        if isinstance(self.to, str):
            score += 2 * difflib.SequenceMatcher(None, self.to, d.url).ratio()
        elif self.to is not None:
            score += 2.0 if _url_matches(self.to, d.url) else 0.0
        score -= 0.25 * len(self.misses(d))
        score += 0.5 if _ok(d) else 0.0
        return score


def _url_matches(want: str | re.Pattern[str], url: str) -> bool:
    if isinstance(want, re.Pattern):
        return want.search(url) is not None
    if any(c in want for c in "*?["):
        return fnmatch.fnmatchcase(url, want)
    return url == want


def _json_misses(want: Any, got: Any, path: str) -> list[str]:
    """Subset match: dicts by key (extra keys allowed), everything else by equality. JSON pointers in text."""
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return [f"{path or '/'} is {_dump(got)}, expected an object ⊇ {_dump(want)}"]
        out: list[str] = []
        for k, v in want.items():
            if k not in got:
                out.append(f"{path}/{k} missing (expected {_dump(v)})")
            else:
                out.extend(_json_misses(v, got[k], f"{path}/{k}"))
        return out
    if want != got or type(want) is not type(got) and not (_is_num(want) and _is_num(got)):
        return [f"{path or '/'} is {_dump(got)}, expected {_dump(want)}"]
    return []


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _ok(d: Delivery) -> bool:
    return d.error is None and d.status is not None and 200 <= d.status < 300


def _dump(x: Any) -> str:
    try:
        return _json.dumps(x, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return repr(x)


def _short(body: bytes, limit: int = 120) -> str:
    text = body.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _answer(d: Delivery) -> str:
    if d.error:
        return f"failed: {d.error}"
    return f"-> {d.status}"


def _line(d: Delivery) -> str:
    kind = "virtual" if d.virtual else "real"
    return (
        f"{d.method} {d.url} {_answer(d)} at {format_ms(d.time_ms)} "
        f"[{d.message_id}, attempt {d.retried + 1}, {kind}] body {_short(d.body, 80)}"
    )


def _footer(seed: int | None) -> str:
    return "" if seed is None else f"\n(qstash-sim seed {seed}: replay with --qstash-sim-seed={seed})"


# ---------------------------------------------------------------------------------------------- checks


def check_delivered(
    inbox: Sequence[Delivery],
    messages: Sequence[Message],
    flt: DeliveryFilter,
    times: int | None,
    now_ms: int,
    *,
    seed: int | None = None,
) -> list[Delivery]:
    """The successful (2xx) deliveries matching ``flt``; fails unless there are ``times`` of them (>= 1 if None)."""
    __tracebackhide__ = True
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
        raise TypeError(f"times must be a non-negative int, got {times!r}")
    hits = [d for d in inbox if _ok(d) and not flt.misses(d)]
    if (len(hits) == times) if times is not None else hits:
        return hits
    want = "at least 1 delivery" if times is None else f"{times} deliver{'y' if times == 1 else 'ies'}"
    lines = [f"expected {want} {flt.describe()}, found {len(hits)}."]
    if hits:
        lines.append("Matching deliveries:")
        lines.extend(f"  {i}. {_line(d)}" for i, d in enumerate(hits, 1))
    others = [d for d in inbox if d not in hits]
    if others:
        ranked = sorted(others, key=flt.closeness, reverse=True)[:_MAX_CANDIDATES]
        lines.append(f"Closest of {len(others)} other deliveries in the inbox:")
        for i, d in enumerate(ranked, 1):
            lines.append(f"  {i}. {_line(d)}")
            reasons = flt.misses(d) + ([] if _ok(d) else [f"not a success ({_answer(d)})"])
            lines.extend(f"       {r}" for r in reasons)
            if isinstance(flt.to, str) and "url differs" in " ".join(reasons):
                close = difflib.get_close_matches(flt.to, [d.url], n=1, cutoff=0.8)
                if close:
                    lines.append(f"       did you mean to={close[0]!r}?")
    elif not hits:
        lines.append("The inbox is empty: nothing was delivered anywhere.")
    lines.extend(_pending_notes(messages, flt, now_ms))
    raise QstashSimAssertionError("\n".join(lines) + _footer(seed))


def check_not_delivered(inbox: Sequence[Delivery], flt: DeliveryFilter, *, seed: int | None = None) -> None:
    """Fails if any successful (2xx) delivery matches ``flt``, listing them."""
    __tracebackhide__ = True
    hits = [d for d in inbox if _ok(d) and not flt.misses(d)]
    if not hits:
        return
    lines = [f"expected no delivery {flt.describe()}, found {len(hits)}:"]
    lines.extend(f"  {i}. {_line(d)}" for i, d in enumerate(hits, 1))
    raise QstashSimAssertionError("\n".join(lines) + _footer(seed))


def _pending_notes(messages: Sequence[Message], flt: DeliveryFilter, now_ms: int) -> list[str]:
    """Messages that would match but have not been delivered yet: the usual reason is an unadvanced clock."""
    out: list[str] = []
    for m in messages:
        if m.state in (MessageState.DELIVERED,):
            continue
        if flt.to is not None and not _url_matches(flt.to, m.url):
            continue
        if flt.message_id and m.message_id != flt.message_id:
            continue
        out.append(f"  {m.message_id} to {m.url} is {m.state.value.upper()}{_when(m, now_ms)}")
    if out:
        out.insert(0, "Not delivered yet:")
    return out


def _when(m: Message, now_ms: int) -> str:
    due = m.next_delivery_ms if m.next_delivery_ms is not None else m.not_before_ms
    if m.state in (MessageState.PENDING, MessageState.RETRY) and due > now_ms:
        return f", next attempt at {format_ms(due)} (in {_human(due - now_ms)}: advance the clock)"
    if m.state is MessageState.FAILED:
        return f" (in the DLQ as {m.dlq_id})" if m.dlq_id else ""
    return ""


def _human(ms: int) -> str:
    """``_human(90061000)`` -> ``"1d1h1m1s"``."""
    s, rest = divmod(ms, 1000)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, s = divmod(s, size)
        if n:
            out += f"{n}{unit}"
    return out or f"{rest}ms"


def _find(messages: Sequence[Message], message_id: str, seed: int | None) -> Message:
    __tracebackhide__ = True
    for m in messages:
        if m.message_id == message_id:
            return m
    ids = [m.message_id for m in messages]
    hint = difflib.get_close_matches(message_id, ids, n=1)
    text = f"no message {message_id!r} in the simulator"
    text += f"; did you mean {hint[0]!r}?" if hint else f"; it holds {len(ids)}: {', '.join(ids[:10]) or 'none'}"
    raise QstashSimAssertionError(text + _footer(seed))


def _history(m: Message) -> str:
    rows = []
    for h in m.history:
        extra = ""
        if h.response_status is not None:
            extra += f" status {h.response_status}"
        if h.error:
            extra += f" ({h.error})"
        if h.next_delivery_ms is not None:
            extra += f", next at {format_ms(h.next_delivery_ms)}"
        rows.append(f"    {format_ms(h.time_ms)} {h.state.value}{extra}")
    return "\n".join(rows)


def check_in_dlq(
    messages: Sequence[Message], dlq: Iterable[DlqEntry], message_id: str, now_ms: int, *, seed: int | None = None
) -> DlqEntry:
    """The DLQ entry of ``message_id``; fails with the message's state and history when there is none."""
    __tracebackhide__ = True
    for e in dlq:
        if e.message.message_id == message_id:
            return e
    m = _find(messages, message_id, seed)
    text = f"expected message {message_id} in the DLQ, but it is {m.state.value.upper()}{_when(m, now_ms)}"
    if m.state in (MessageState.PENDING, MessageState.RETRY):
        attempts = sum(1 for h in m.history if h.state is EventState.ACTIVE)
        text += f"; {attempts} of {m.max_retries + 1} attempts made"
    text += f".\nHistory of {message_id} (to {m.url}):\n{_history(m)}"
    raise QstashSimAssertionError(text + _footer(seed))


_STATE_NAMES = [s.value for s in EventState]


def _state(x: Any, i: int) -> EventState | None:
    if x is Ellipsis:
        return None
    if isinstance(x, EventState):
        return x
    if isinstance(x, str) and x.upper() in _STATE_NAMES:
        return EventState(x.upper())
    hint = difflib.get_close_matches(str(x).upper(), _STATE_NAMES, n=1)
    raise ValueError(
        f"states[{i}]: unknown state {x!r}; expected one of {', '.join(_STATE_NAMES)} or ..."
        + (f" (did you mean {hint[0]!r}?)" if hint else "")
    )


def _fits(got: Sequence[EventState], pattern: Sequence[EventState | None]) -> bool:
    """Glob match: ``None`` (from ``...``) stands for any run of states, the empty run included."""
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if j == len(pattern):
                memo[i, j] = i == len(got)
            elif pattern[j] is None:
                memo[i, j] = go(i, j + 1) or (i < len(got) and go(i + 1, j))
            else:
                memo[i, j] = i < len(got) and got[i] is pattern[j] and go(i + 1, j + 1)
        return memo[i, j]

    return go(0, 0)


def check_states(
    messages: Sequence[Message], message_id: str, states: Sequence[Any], *, seed: int | None = None
) -> list[EventState]:
    """Fails unless ``message_id``'s history matches ``states`` (``...`` = any run of states)."""
    __tracebackhide__ = True
    pattern = [_state(x, i) for i, x in enumerate(states)]
    m = _find(messages, message_id, seed)
    got = [h.state for h in m.history]
    if _fits(got, pattern):
        return got
    shown = ", ".join("..." if p is None else p.value for p in pattern)
    text = (
        f"message {message_id} went through {' -> '.join(s.value for s in got) or '(nothing)'}\n"
        f"expected                  [{shown}]\n"
        f"History (to {m.url}, now {m.state.value.upper()}):\n{_history(m)}"
    )
    raise QstashSimAssertionError(text + _footer(seed))


def as_decimal(amount: Decimal | str | int | float) -> Decimal:
    """``"0.00003"`` -> ``Decimal("0.00003")``; floats go through ``str`` so 3e-05 stays exact."""
    if isinstance(amount, bool):
        raise TypeError("amount must be a Decimal, str, int or float, got bool")
    try:
        return amount if isinstance(amount, Decimal) else Decimal(str(amount).lstrip("$"))
    except InvalidOperation:
        raise ValueError(f"amount {amount!r}: expected dollars such as '0.00003'") from None


def check_spent(
    entries: Sequence[LedgerEntry], who: str, amount: Decimal | str | int | float, *, seed: int | None = None
) -> Decimal:
    """Fails unless agent (or, if no agent has that name, account) ``who`` spent exactly ``amount`` dollars."""
    __tracebackhide__ = True
    want = as_decimal(amount)
    by_agent = [e for e in entries if e.agent == who]
    mine = by_agent or [e for e in entries if e.account == who]
    kind = "agent" if by_agent else "account"
    total = sum((e.amount for e in mine), Decimal(0))
    if total == want:
        return total
    lines = [f"expected {kind} {who!r} to have spent ${want}, it spent ${total}."]
    if mine:
        groups: dict[tuple[str, Decimal], int] = {}
        for e in mine:
            groups[e.operation, e.unit_price] = groups.get((e.operation, e.unit_price), 0) + e.quantity
        lines.append("Charges:")
        lines.extend(f"  {op}: {q} × ${p} = ${p * q}" for (op, p), q in groups.items())
    else:
        agents = sorted({e.agent for e in entries if e.agent})
        accounts = sorted({e.account for e in entries})
        lines.append(
            f"Nobody called {who!r} was charged. Accounts charged: {', '.join(map(repr, accounts)) or 'none'}; "
            f"agents: {', '.join(map(repr, agents)) or 'none'}."
        )
        hint = difflib.get_close_matches(who, accounts + agents, n=1)
        if hint:
            lines.append(f"Did you mean {hint[0]!r}?")
    raise QstashSimAssertionError("\n".join(lines) + _footer(seed))


def _in_flight_peak(rows: Sequence[JournalEntry]) -> tuple[int, list[JournalEntry]]:
    """The most attempts in flight at once (a sweep over their start and end steps) and those attempts."""
    marks = sorted(
        [(e.detail["startStep"], 1, i) for i, e in enumerate(rows)]
        + [(e.detail["endStep"], -1, i) for i, e in enumerate(rows)]
    )
    open_now: set[int] = set()
    peak: list[int] = []
    for _, delta, i in marks:
        if delta > 0:
            open_now.add(i)
            if len(open_now) > len(peak):
                peak = sorted(open_now)
        else:
            open_now.discard(i)
    return len(peak), [rows[i] for i in peak]


def check_max_in_flight(journal: Sequence[JournalEntry], key_or_queue: str, n: int, *, seed: int | None = None) -> int:
    """Fails unless at most ``n`` attempts of flow-control key (or queue) ``key_or_queue`` were in flight at
    once; returns the peak. Counted from the journal's attempt lines (``startStep``/``endStep``), so also
    within one virtual instant; an attempt still on the wire is not in the journal yet."""
    __tracebackhide__ = True
    attempts = [e for e in journal if e.kind == "attempt" and "startStep" in e.detail]
    mine = [e for e in attempts if key_or_queue in (e.detail.get("flowControlKey"), e.detail.get("queue"))]
    if not mine:
        names = sorted({str(e.detail[k]) for e in attempts for k in ("flowControlKey", "queue") if e.detail.get(k)})
        hint = difflib.get_close_matches(key_or_queue, names, n=1)
        text = (
            f"no attempt of a flow-control key or queue called {key_or_queue!r} in the journal"
            f" ({len(attempts)} attempts in all; keys and queues seen: {', '.join(map(repr, names)) or 'none'})"
        )
        raise QstashSimAssertionError(text + (f"; did you mean {hint[0]!r}?" if hint else "") + _footer(seed))
    peak, at_peak = _in_flight_peak(mine)
    if peak <= n:
        return peak
    lines = [
        f"expected at most {n} attempts of {key_or_queue!r} in flight at once, found {peak} "
        f"(of {len(mine)} attempts). In flight together:"
    ]
    for e in at_peak[: _MAX_CANDIDATES * 2]:
        started = format_ms(int(e.detail.get("startedMs", e.time_ms)))
        lines.append(
            f"  {e.message_id} attempt {(e.retried or 0) + 1} to {e.url}: started {started}, "
            f"answered {format_ms(e.time_ms)} ({e.outcome})"
        )
    if peak > len(at_peak[: _MAX_CANDIDATES * 2]):
        lines.append(f"  ... and {peak - _MAX_CANDIDATES * 2} more")
    lines.append("Did every message name the key with the same Upstash-Flow-Control-Value, or was it pinned?")
    raise QstashSimAssertionError("\n".join(lines) + _footer(seed))
