"""schemathesis hooks for tests/test_fuzz.py: valid values for the formats openapi.yaml defines itself.

``upstash-retry-delay`` is a small expression language (not a regular one, so no JSON Schema pattern can
describe it); this strategy generates expressions the gateway's parser accepts, so that schemathesis'
"valid data is accepted" check can hold the gateway to them.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

_atoms = st.one_of(st.integers(0, 100_000).map(str), st.just("retried"))


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}")
    unary = st.tuples(st.sampled_from(["abs", "floor", "ceil", "round", "sqrt", "exp"]), inner).map(
        lambda t: f"{t[0]}({t[1]})"
    )
    two = st.tuples(st.sampled_from(["pow", "min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})")
    return st.one_of(binary, unary, two, inner.map(lambda x: f"({x})"))


RETRY_DELAY = st.recursive(_atoms, _extend, max_leaves=6).filter(lambda e: len(e) <= 256)

schemathesis.openapi.format("upstash-retry-delay", RETRY_DELAY)
