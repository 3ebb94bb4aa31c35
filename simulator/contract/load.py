"""Loading the OpenAPI document: the shipped ``openapi.yaml`` (or a given file), and facts read off it
without compiling (``x-fault-statuses``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from qstash_sim.base.resources import compiled_spec_files, spec_file
from qstash_sim.contract.compiled import compiled_form, parse_yaml
from qstash_sim.errors import ContractError


def load_spec(path: str | Path | None = None) -> dict[str, Any]:
    """Load the OpenAPI document: ``path``, or the ``openapi.yaml`` shipped with the package.

    Parsed with libyaml's C loader when PyYAML has it (about 50 ms for the shipped file, a sixth of a
    server's start). The shipped file is read instead from its compiled form when one matches it
    (:func:`compiled_spec`, about 2 ms); a given ``path`` is always parsed.
    """
    if path is None:
        fast = compiled_spec()
        if fast is not None:
            return fast
    source = spec_file() if path is None else Path(path)
    return parse_spec(source.read_text("utf-8"), source)


def parse_spec(text: str, source: object = "openapi.yaml") -> dict[str, Any]:
    """The OpenAPI document in ``text`` (YAML), or :class:`ContractError` naming ``source``."""
    try:
        spec = parse_yaml(text)
    except yaml.YAMLError as e:
        raise ContractError(f"{source}: invalid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(spec, dict):
        raise ContractError(f"{source}: not a mapping")
    return spec


def compiled_spec() -> dict[str, Any] | None:
    """The shipped contract from a compiled form whose ``sha256`` is that of the shipped ``openapi.yaml``
    as it is now, or ``None``. A wheel carries one (``qstash_sim/openapi.json``, written by the build); in
    a checkout it is ``build/qstash-sim/openapi.json``, written here on first use (the checkout is the
    developer's own tree; nothing is written outside it, and a wheel's install is never written to). A
    stale or unreadable one is ignored: the text is always hashed, so an edited ``openapi.yaml`` counts."""
    raw = spec_file().read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    packaged, checkout = compiled_spec_files()
    for candidate in (packaged, checkout):
        if candidate is None:
            continue
        try:
            doc = json.loads(candidate.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("sha256") == digest and isinstance(doc.get("spec"), dict):
            spec: dict[str, Any] = doc["spec"]
            return spec
    if checkout is None:
        return None
    try:
        data = compiled_form(raw)
        checkout.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkout.with_name(f"{checkout.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, checkout)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    compiled: dict[str, Any] = json.loads(data)["spec"]
    return compiled


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
