"""schemathesis hooks for tests/contract/test_fuzz.py.

* **Valid values for the formats openapi.yaml defines itself.** ``upstash-retry-delay`` is a small
  expression language (not a regular one, so no JSON Schema pattern can describe it); this strategy
  generates expressions the gateway's parser accepts, so that schemathesis' "valid data is accepted" check
  can hold the gateway to them.
* **One narrow exclusion, where schemathesis sends what it did not generate** (``filter_failure``). Before
  it percent-encodes a path value, its fuzzing phase decodes it once ("to keep quoting idempotent"):
  a generated destination ``https://a.com/x%10`` (valid: the escape is part of the URL) goes out as
  ``https%3A%2F%2Fa.com%2Fx%10``, which the gateway rightly decodes once to ``https://a.com/x\\x10`` (a
  control character: 400). So a "schema-valid request rejected" (ST202) on a greedy destination route is
  dropped when the destination *as sent* is outside the spec's grammar (on /v2: that URL or a URL-group
  name); one the grammar admits is kept.
* **And one where schemathesis contradicts itself.** A "schema-violating request accepted" (ST201) whose only
  violation is an undeclared query parameter or header (the coverage phase's "object with unexpected
  properties" outside the body) is one schemathesis means to excuse: extra parameters are ignored, as HTTP
  servers (QStash and the simulator included) do. Its excuse re-validates the declared parameters *as
  sent*, strings, so one that is an integer (``offset=0``) reads as invalid and the excuse fails: dropped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import schemathesis
import yaml
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

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there: the pure-Python one takes seconds
_SPEC = yaml.load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text("utf-8"), Loader=_LOADER)  # noqa: S506
# JSON Schema's "$" is the end of the string.
DESTINATION = re.compile(_SPEC["components"]["schemas"]["Destination"]["pattern"].removesuffix("$") + r"\Z")


# On /v2 a destination is that URL or a URL-group name (QstashDestination).
NAME = re.compile(_SPEC["components"]["schemas"]["QstashName"]["pattern"].removesuffix("$") + r"\Z")


def admitted(template: str, dest: str) -> bool:
    """Whether the spec's grammar for ``template``'s ``{destination}`` admits ``dest``."""
    if DESTINATION.search(dest) is not None:
        return True
    return template.startswith("/v2/") and NAME.search(dest) is not None and dest not in (".", "..")


def sent_destination(template: str, url: str) -> str | None:
    """The greedy ``{destination}`` of ``template`` (a route ending in it) in the URL as sent, or None."""
    if not (template.startswith(("/v1/", "/v2/")) and template.endswith("/{destination}")):
        return None
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else ""
    prefix = re.escape(template.removesuffix("{destination}"))
    m = re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/?]+", prefix) + "(.+)", path, re.DOTALL)
    return m.group(1) if m else None


def only_an_extra_parameter(case: Any) -> bool:
    """Whether the case is the coverage phase's one undeclared query parameter or header (above)."""
    data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
    location = getattr(data, "parameter_location", None)
    return (
        str(getattr(data, "scenario", "")) == "object_unexpected_properties"
        and location is not None
        and str(location.value) in ("query", "header", "cookie")
    )


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but an ST202 whose destination, as sent, the spec's grammar refuses, and an ST201
    whose one violation is an extra parameter (above)."""
    if failure.code == "ST201":
        return not only_an_extra_parameter(case)
    if failure.code != "ST202":
        return True
    dest = sent_destination(case.operation.path, response.request.url)
    return dest is None or admitted(case.operation.path, dest)
