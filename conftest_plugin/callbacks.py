"""``assert_callback`` / ``assert_failure_callback``: what a callback URL received, with a near-miss report.

A (failure) callback is a message of its own (:mod:`qstash_sim.core.callbacks`), linked to the message
whose attempt it reports (``Message.source_message_id``, ``callback_kind``). A callback counts once its URL
answered 2xx; each is returned as a :class:`CallbackCall` with the callback body decoded. On a miss the
report says why: the source was published without the header, its retries are not exhausted yet (advance
the clock), the callback URL failed (its answers, virtual ones from a scenario), or the callbacks that came
differ (status, retried, URL, JSON).
"""

from __future__ import annotations

import base64
import json as _json
import re
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qstash_sim.base.clock import format_ms
from qstash_sim.domain.message import Delivery, EventState, Message, MessageState

from . import assertions as _a

if TYPE_CHECKING:
    from .handle import _Core

__all__ = ["AsyncCallbackAssertions", "CallbackAssertions", "CallbackCall", "CallbackFilter", "check_callbacks"]

_KINDS = {"callback": "Upstash-Callback", "failureCallback": "Upstash-Failure-Callback"}
_NOUN = {"callback": "callback", "failureCallback": "failure callback"}


@dataclass(frozen=True, slots=True)
class CallbackCall:
    """One (failure) callback its URL accepted: the delivery and QStash's callback body, decoded."""

    delivery: Delivery
    payload: dict[str, Any]
    kind: str  # "callback" or "failureCallback"

    @property
    def source_message_id(self) -> str:
        return str(self.payload.get("sourceMessageId"))

    @property
    def status(self) -> int:
        """The source destination's answer (0: none came, see ``payload["error"]``)."""
        return int(self.payload.get("status", 0))

    @property
    def retried(self) -> int:
        return int(self.payload.get("retried", 0))

    @property
    def dlq_id(self) -> str | None:
        """The source message's DLQ id (failure callbacks only)."""
        return self.payload.get("dlqId")

    @property
    def response_body(self) -> bytes:
        """The source destination's answer body (``body``, base64-decoded)."""
        return base64.b64decode(self.payload.get("body") or "")

    @property
    def source_body(self) -> bytes:
        """The source message's body (``sourceBody``, base64-decoded)."""
        return base64.b64decode(self.payload.get("sourceBody") or "")


@dataclass(frozen=True, slots=True)
class CallbackFilter:
    """What a callback must look like; ``None`` (or the missing marker for ``json``) matches anything."""

    kind: str
    source: str | None = None
    to: str | re.Pattern[str] | None = None
    status: int | None = None
    retried: int | None = None
    json: Any = _a._MISSING

    def describe(self) -> str:
        parts = [_NOUN[self.kind]]
        if self.source:
            parts.append(f"of {self.source}")
        if self.to is not None:
            parts.append(f"to {self.to.pattern!r} (regex)" if isinstance(self.to, re.Pattern) else f"to {self.to}")
        if self.status is not None:
            parts.append(f"reporting status {self.status}")
        if self.retried is not None:
            parts.append(f"after retry {self.retried}")
        if self.json is not _a._MISSING:
            parts.append(f"with body ⊇ {_a._dump(self.json)}")
        return " ".join(parts)

    def misses(self, call: CallbackCall) -> list[str]:
        out: list[str] = []
        if self.source and call.source_message_id != self.source:
            out.append(f"reports {call.source_message_id}")
        if self.to is not None and not _a._url_matches(self.to, call.delivery.url):
            out.append(f"url differs: {call.delivery.url}")
        if self.status is not None and call.status != self.status:
            out.append(f"status is {call.status}, not {self.status}")
        if self.retried is not None and call.retried != self.retried:
            out.append(f"retried is {call.retried}, not {self.retried}")
        if self.json is not _a._MISSING:
            out.extend(f"body {p}" for p in _a._json_misses(self.json, call.payload, ""))
        return out


def _calls(
    inbox: Sequence[Delivery], messages: Sequence[Message], kind: str
) -> tuple[list[CallbackCall], list[Message]]:
    """The accepted callbacks of ``kind`` (inbox order), and the callback messages of that kind."""
    mine = {m.message_id: m for m in messages if m.callback_kind == kind}
    calls: list[CallbackCall] = []
    for d in inbox:
        if d.message_id in mine and _a._ok(d):
            try:
                payload = _json.loads(d.body)
            except ValueError:
                continue
            if isinstance(payload, dict):
                calls.append(CallbackCall(d, payload, kind))
    return calls, list(mine.values())


def check_callbacks(
    inbox: Sequence[Delivery],
    messages: Sequence[Message],
    flt: CallbackFilter,
    times: int | None,
    now_ms: int,
    *,
    seed: int | None = None,
) -> list[CallbackCall]:
    """The accepted callbacks matching ``flt``; fails unless there are ``times`` (>= 1 if None)."""
    __tracebackhide__ = True
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
        raise TypeError(f"times must be a non-negative int, got {times!r}")
    calls, cb_messages = _calls(inbox, messages, flt.kind)
    hits = [c for c in calls if not flt.misses(c)]
    if (len(hits) == times) if times is not None else hits:
        return hits
    want = f"at least 1 {_NOUN[flt.kind]}" if times is None else f"{times} × {_NOUN[flt.kind]}"
    lines = [f"expected {want}: {flt.describe()}, found {len(hits)}."]
    if flt.source:
        lines.extend(_source_notes(messages, flt, now_ms, seed))
    others = [c for c in calls if c not in hits]
    if hits:
        lines.append("Matching:")
        lines.extend(f"  {i}. {_line(c)}" for i, c in enumerate(hits, 1))
    if others:
        ranked = sorted(others, key=lambda c: len(flt.misses(c)))[: _a._MAX_CANDIDATES]
        lines.append(f"Closest of {len(others)} other {_NOUN[flt.kind]}s received:")
        for i, c in enumerate(ranked, 1):
            lines.append(f"  {i}. {_line(c)}")
            lines.extend(f"       {r}" for r in flt.misses(c))
    lines.extend(_unanswered(inbox, cb_messages, flt, now_ms))
    if not cb_messages:
        lines.append(f"No {_NOUN[flt.kind]} message was published (none of the messages has {_KINDS[flt.kind]}).")
    raise _a.QstashSimAssertionError("\n".join(lines) + _a._footer(seed))


def _source_notes(messages: Sequence[Message], flt: CallbackFilter, now_ms: int, seed: int | None) -> list[str]:
    """Why the source may have no such callback (yet): no header, not exhausted, not attempted yet."""
    assert flt.source is not None
    src = _a._find(messages, flt.source, seed)
    settings = src.callback if flt.kind == "callback" else src.failure_callback
    if settings is None:
        return [
            f"{src.message_id} was published without {_KINDS[flt.kind]} "
            "(callbacks are kept on /v2; the Sapiom gateway /v1 strips them)."
        ]
    out = [f"{src.message_id} (to {src.url}) is {src.state.value.upper()}{_a._when(src, now_ms)}."]
    attempts = sum(1 for h in src.history if h.state is EventState.ACTIVE)
    if flt.kind == "failureCallback" and src.state is not MessageState.FAILED:
        out.append(
            f"A failure callback is sent once its retries are exhausted: {attempts} of {src.max_retries + 1} "
            "attempts made" + (" (it was delivered)." if src.state is MessageState.DELIVERED else ".")
        )
    elif attempts == 0:
        out.append("It has not been attempted yet, so nothing was called back.")
    return out


def _unanswered(
    inbox: Sequence[Delivery], cb_messages: Sequence[Message], flt: CallbackFilter, now_ms: int
) -> list[str]:
    """Callback messages for this source whose URL has not accepted them (failing, or not due yet)."""
    out: list[str] = []
    for m in cb_messages:
        if flt.source and m.source_message_id != flt.source or m.state is MessageState.DELIVERED:
            continue
        tried = [d for d in inbox if d.message_id == m.message_id]
        answers = ", ".join(_a._answer(d) + (" (virtual)" if d.virtual else "") for d in tried)
        out.append(
            f"  {m.message_id} to {m.url} (reporting {m.source_message_id}) is {m.state.value.upper()}"
            f"{_a._when(m, now_ms)}" + (f"; its URL answered: {answers}" if answers else "")
        )
    if out:
        out.insert(0, f"{_NOUN[flt.kind].capitalize()} messages not accepted by their URL (yet):")
    return out


def _line(c: CallbackCall) -> str:
    p = c.payload
    extra = f", dlqId {p['dlqId']}" if "dlqId" in p else ""
    return (
        f"{c.delivery.method} {c.delivery.url} at {format_ms(c.delivery.time_ms)} [{c.delivery.message_id}] "
        f"reporting {p.get('sourceMessageId')}: status {p.get('status')}, retried {p.get('retried')}"
        f"/{p.get('maxRetries')}{extra}"
    )


# ---------------------------------------------------------------------------------------------- handles


class CallbackAssertions:
    """``assert_callback`` / ``assert_failure_callback`` of :class:`~conftest_plugin.handle.QstashSim`."""

    _core: _Core

    def _check(self, flt: CallbackFilter, times: int | None) -> list[CallbackCall]:
        __tracebackhide__ = True
        self._core.call(self._core.sim.settle)
        inbox, messages, _, now = self._core.snapshot()
        return check_callbacks(inbox, messages, flt, times, now, seed=self._core.config.seed)

    def assert_callback(
        self,
        message_id: str | None = None,
        *,
        to: str | re.Pattern[str] | None = None,
        times: int | None = None,
        status: int | None = None,
        retried: int | None = None,
        json: Any = _a._MISSING,
    ) -> list[CallbackCall]:
        """Assert ``times`` (default: at least one) ``Upstash-Callback`` calls accepted by their URL: of
        ``message_id`` (the source), to ``to`` (URL, glob or regex), reporting the source destination's
        ``status`` after retry ``retried``, the callback body a superset of ``json``. Settles first.
        Returns them (body decoded: :class:`CallbackCall`); on a miss, says why."""
        __tracebackhide__ = True
        return self._check(CallbackFilter("callback", message_id, to, status, retried, json), times)

    def assert_failure_callback(
        self,
        message_id: str | None = None,
        *,
        to: str | re.Pattern[str] | None = None,
        times: int | None = None,
        status: int | None = None,
        json: Any = _a._MISSING,
    ) -> list[CallbackCall]:
        """Assert ``times`` (default: at least one) ``Upstash-Failure-Callback`` calls accepted by their URL,
        of ``message_id``, reporting the last ``status``, body ⊇ ``json``; each call's ``dlq_id`` is the
        source's DLQ entry. Settles first. On a miss, says why (e.g. retries not exhausted yet)."""
        __tracebackhide__ = True
        return self._check(CallbackFilter("failureCallback", message_id, to, status, None, json), times)


class AsyncCallbackAssertions:
    """The same for :class:`~conftest_plugin.handle.AsyncQstashSim`: awaitables, tracked like its other
    verbs (``_Core.track``), so one called without ``await`` fails the test at teardown."""

    _core: _Core

    async def _check(self, flt: CallbackFilter, times: int | None) -> list[CallbackCall]:
        __tracebackhide__ = True
        await self._core.acall(self._core.sim.settle)
        inbox, messages, _, now = self._core.snapshot()
        return check_callbacks(inbox, messages, flt, times, now, seed=self._core.config.seed)

    def assert_callback(
        self,
        message_id: str | None = None,
        *,
        to: str | re.Pattern[str] | None = None,
        times: int | None = None,
        status: int | None = None,
        retried: int | None = None,
        json: Any = _a._MISSING,
    ) -> Coroutine[Any, Any, list[CallbackCall]]:
        """See :meth:`CallbackAssertions.assert_callback` (awaitable; one never awaited fails the test)."""
        flt = CallbackFilter("callback", message_id, to, status, retried, json)
        return self._core.track("assert_callback", self._check(flt, times))

    def assert_failure_callback(
        self,
        message_id: str | None = None,
        *,
        to: str | re.Pattern[str] | None = None,
        times: int | None = None,
        status: int | None = None,
        json: Any = _a._MISSING,
    ) -> Coroutine[Any, Any, list[CallbackCall]]:
        """See :meth:`CallbackAssertions.assert_failure_callback` (awaitable; one never awaited fails the test)."""
        flt = CallbackFilter("failureCallback", message_id, to, status, None, json)
        return self._core.track("assert_failure_callback", self._check(flt, times))
