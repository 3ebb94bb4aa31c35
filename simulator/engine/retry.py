"""Retry timing: QStash's default backoff, ``Upstash-Retry-Delay`` expressions, and ``Retry-After``.

>>> default_backoff_ms(1)
12000
>>> compile_retry_delay("pow(2, retried) * 1000").evaluate(3)
8000
>>> parse_retry_after({"Retry-After": ["6m5s"]})
365000
"""

from __future__ import annotations

import difflib
import email.utils
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qstash_sim.base.durations import parse_duration

__all__ = [
    "MAX_DELAY_MS",
    "RETRY_AFTER_HEADERS",
    "RetryDelay",
    "compile_retry_delay",
    "default_backoff_ms",
    "parse_retry_after",
]

MAX_DELAY_MS = 86_400_000  # one day: the cap of every retry delay
MAX_EXPRESSION_LENGTH = 256  # what openapi.yaml allows the header; a batch item's headers get the same
_HEADER = "Upstash-Retry-Delay"


def default_backoff_ms(n: int) -> int:
    """QStash's default delay before retry number ``n`` (1 = first retry), whole seconds, in ms.

    ``min(86400, e^(2.5 n))`` seconds: n=1 -> 12 s, 2 -> 2m28s, 3 -> 30m8s, 4 -> 6h7m6s, >=5 -> 24 h.
    """
    if n < 0:
        raise ValueError(f"retry number must be >= 0, got {n}")
    if n >= 5:  # e^12.5 > 86400 already; avoids overflow for huge n
        return MAX_DELAY_MS
    return int(min(86400.0, math.exp(2.5 * n))) * 1000


# ---------------------------------------------------------------------------------------------------
# Upstash-Retry-Delay: a tiny arithmetic language, parsed by hand (never eval).
#
#   expr    := term (("+" | "-") term)*
#   term    := unary (("*" | "/" | "%") unary)*
#   unary   := ("-" | "+") unary | power
#   power   := primary ("**" unary)?            right-associative; -2**2 == -(2**2) as in Python/JS
#   primary := NUMBER | "retried" | NAME "(" expr ("," expr)* ")" | "(" expr ")"
# ---------------------------------------------------------------------------------------------------

_FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    # name: (implementation, min args, max args)
    "pow": (lambda a, b: math.pow(a, b), 2, 2),
    "exp": (math.exp, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "floor": (lambda a: float(math.floor(a)), 1, 1),
    "ceil": (lambda a: float(math.ceil(a)), 1, 1),
    # JS Math.round semantics (half up), which is what a JS-flavoured expression author expects.
    "round": (lambda a: float(math.floor(a + 0.5)), 1, 1),
    "min": (min, 1, None),
    "max": (max, 1, None),
}
_FUNC_LIST = ", ".join(_FUNCTIONS)
_VARIABLE = "retried"
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/%(),]))"
)

# Nodes are small tuples: ("num", value) | ("var",) | ("neg", node) | (op, left, right) | ("call", f, args)
_Node = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "num" | "name" | "op" | "end"
    text: str
    pos: int


def _tokenize(expr: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(expr)
    while pos < n:
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            ch = expr[pos:].lstrip()[:1]
            at = pos + (len(expr[pos:]) - len(expr[pos:].lstrip()))
            hint = " (use pow(a, b) or a ** b for powers)" if ch == "^" else ""
            raise ValueError(f"{_HEADER}: unexpected character {ch!r} at position {at}{hint}")
        kind = m.lastgroup or "op"
        start = m.start(kind)
        toks.append(_Tok(kind, m.group(kind), start))
        pos = m.end()
    toks.append(_Tok("end", "", len(expr)))
    return toks


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.toks = _tokenize(expr)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.take()
        if tok.text != text or tok.kind != "op":
            raise self.error(tok, f"expected {text!r}")
        return tok

    def error(self, tok: _Tok, what: str) -> ValueError:
        got = "end of expression" if tok.kind == "end" else repr(tok.text)
        return ValueError(f"{_HEADER}: {what} at position {tok.pos}, found {got}")

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise ValueError(f"{_HEADER}: empty expression; expected e.g. 'pow(2, retried) * 1000'")
        node = self.expr_()
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(tok, "expected an operator (+ - * / % **) or the end")
        return node

    def expr_(self) -> _Node:
        node = self.term()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            node = (op, node, self.term())
        return node

    def term(self) -> _Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/", "%"):
            op = self.take().text
            node = (op, node, self.unary())
        return node

    def unary(self) -> _Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("-", "+"):
            self.take()
            inner = self.unary()
            return ("neg", inner) if tok.text == "-" else inner
        return self.power()

    def power(self) -> _Node:
        node = self.primary()
        if self.peek().kind == "op" and self.peek().text == "**":
            self.take()
            node = ("**", node, self.unary())
        return node

    def primary(self) -> _Node:
        tok = self.take()
        if tok.kind == "num":
            return ("num", float(tok.text))
        if tok.kind == "op" and tok.text == "(":
            node = self.expr_()
            self.expect(")")
            return node
        if tok.kind == "name":
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text == "(":
                return self.call(tok)
            if tok.text == _VARIABLE:
                return ("var",)
            if tok.text in _FUNCTIONS:
                raise self.error(nxt, f"expected '(' after function {tok.text!r}")
            raise ValueError(
                f"{_HEADER}: unknown variable {tok.text!r} at position {tok.pos}; the only variable is "
                f"'retried'{_did_you_mean(tok.text, [_VARIABLE, *_FUNCTIONS])}"
            )
        raise self.error(tok, "expected a number, 'retried', a function call or '('")

    def call(self, name: _Tok) -> _Node:
        spec = _FUNCTIONS.get(name.text)
        if spec is None:
            raise ValueError(
                f"{_HEADER}: unknown function {name.text!r} at position {name.pos}; expected one of "
                f"{_FUNC_LIST}{_did_you_mean(name.text, list(_FUNCTIONS))}"
            )
        self.expect("(")
        args: list[_Node] = []
        if not (self.peek().kind == "op" and self.peek().text == ")"):
            args.append(self.expr_())
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                args.append(self.expr_())
        self.expect(")")
        fn, lo, hi = spec
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            raise ValueError(
                f"{_HEADER}: function {name.text!r} at position {name.pos} takes {want} argument(s), got {len(args)}"
            )
        return ("call", fn, tuple(args))


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _eval(node: _Node, retried: float) -> float:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "var":
        return retried
    if kind == "neg":
        return -_eval(node[1], retried)
    if kind == "call":
        return float(node[1](*(_eval(a, retried) for a in node[2])))
    a, b = _eval(node[1], retried), _eval(node[2], retried)
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "/":
        return a / b
    if kind == "%":
        return math.fmod(a, b)  # JS semantics: the sign follows the dividend
    return math.pow(a, b)  # "**"


@dataclass(frozen=True, slots=True)
class RetryDelay:
    """A compiled ``Upstash-Retry-Delay`` expression. ``evaluate(retried)`` gives the delay in ms."""

    source: str
    _tree: _Node

    def evaluate(self, retried: int) -> int:
        """The delay in ms for ``retried`` (0 for the first retry): negative -> 0, capped at one day.

        ``compile_retry_delay("1000 * (retried + 1)").evaluate(2)`` -> ``3000``.
        Raises ``ValueError`` when the value is undefined (division by zero, ``sqrt(-1)``, NaN).
        """
        try:
            value = _eval(self._tree, float(retried))
        except OverflowError:
            return MAX_DELAY_MS
        except (ZeroDivisionError, ValueError) as exc:
            raise ValueError(f"{_HEADER} {self.source!r} is undefined for retried={retried}: {exc}") from None
        if math.isnan(value):
            raise ValueError(f"{_HEADER} {self.source!r} is not a number for retried={retried}")
        if value <= 0:
            return 0
        if value >= MAX_DELAY_MS:
            return MAX_DELAY_MS
        return int(value)


def compile_retry_delay(expr: str) -> RetryDelay:
    """Parse an ``Upstash-Retry-Delay`` expression once; raise ``ValueError`` with a position if bad.

    ``compile_retry_delay("foo(2)")`` -> ``ValueError("Upstash-Retry-Delay: unknown function 'foo' at
    position 0; expected one of pow, exp, sqrt, abs, floor, ceil, round, min, max")``. Positions are
    0-based character offsets into ``expr``.
    """
    if not isinstance(expr, str):
        raise TypeError(f"{_HEADER} must be a str, got {type(expr).__name__}")
    if len(expr) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"{_HEADER}: at most {MAX_EXPRESSION_LENGTH} characters, got {len(expr)}")
    try:
        return RetryDelay(expr, _Parser(expr).parse())
    except RecursionError:
        raise ValueError(f"{_HEADER}: nested too deeply") from None


# ---------------------------------------------------------------------------------------------------
# Retry-After and friends
# ---------------------------------------------------------------------------------------------------

RETRY_AFTER_HEADERS = ("Retry-After", "X-RateLimit-Reset", "X-RateLimit-Reset-Requests", "X-RateLimit-Reset-Tokens")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(headers: Mapping[str, str | Sequence[str]], now_ms: int | None = None) -> int | None:
    """The delay a destination asked for, in ms, or ``None`` when it asked for nothing usable.

    Reads, in order, ``Retry-After``, ``X-RateLimit-Reset``, ``X-RateLimit-Reset-Requests`` and
    ``X-RateLimit-Reset-Tokens`` (names case-insensitive; values may be lists). The first one that parses
    wins. Each value may be seconds (``"120"`` -> 120000), a Go duration (``"6m5s"`` -> 365000) or an
    RFC 1123 date (relative to ``now_ms``; a past date -> 0). ``"0"`` -> 0 (retry at once). A delay over
    one day is ignored (``None``), so the default backoff applies.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in RETRY_AFTER_HEADERS:
        raw = lowered.get(name.lower())
        if raw is None:
            continue
        values = [raw] if isinstance(raw, str) else list(raw)
        for value in values:
            delay = _parse_one(value.strip(), now_ms)
            if delay is None:
                continue
            return delay if delay <= MAX_DELAY_MS else None
    return None


_MAX_LEN = 64  # longer values are not a delay anyone means: ignored (a 400-digit number once overflowed)


def _parse_one(value: str, now_ms: int | None) -> int | None:
    if not value or len(value) > _MAX_LEN:
        return None
    if _SECONDS.fullmatch(value):
        ms = Decimal(value) * 1000
        return int(ms) if ms <= MAX_DELAY_MS else MAX_DELAY_MS + 1  # over a day: the caller ignores it
    try:
        return parse_duration(value)
    except ValueError:
        pass
    if now_ms is None:
        return None
    try:
        dt = email.utils.parsedate_to_datetime(value)
        if dt.tzinfo is None:  # RFC 1123 dates are GMT
            return None
        return max(0, int(dt.timestamp() * 1000) - now_ms)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
