"""Loading the OpenAPI document: the shipped ``openapi.yaml`` (or a given file), and facts read off it
without compiling (``x-fault-statuses``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from qstash_sim.base.resources import spec_file
from qstash_sim.errors import ContractError


def load_spec(path: str | Path | None = None) -> dict[str, Any]:
    """Load the OpenAPI document: ``path``, or the ``openapi.yaml`` shipped with the package.

    Parsed with libyaml's C loader when PyYAML has it (about 20 ms for the shipped file); nothing is
    cached on disk.
    """
    source = spec_file() if path is None else Path(path)
    text = source.read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise ContractError(f"{source}: invalid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(spec, dict):
        raise ContractError(f"{source}: not a mapping")
    return spec


def fault_statuses(spec: Mapping[str, Any]) -> dict[str, frozenset[int]]:
    """``{operationId: statuses}`` of every operation that declares ``x-fault-statuses``:
    ``{"publishMessage": {401, 402, ...}, ...}``. Only these operations see faults."""
    out: dict[str, frozenset[int]] = {}
    for item in (spec.get("paths") or {}).values():
        for op in item.values():
            if isinstance(op, dict) and "x-fault-statuses" in op and "operationId" in op:
                out[op["operationId"]] = frozenset(int(s) for s in op["x-fault-statuses"])
    return out


@functools.cache
def packaged_fault_statuses() -> Mapping[str, frozenset[int]]:
    """:func:`fault_statuses` of the shipped ``openapi.yaml`` (read once per process)."""
    return MappingProxyType(fault_statuses(load_spec()))
