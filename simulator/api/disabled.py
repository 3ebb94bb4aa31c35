"""A surface that is turned off (``qstash-sim serve --surface ...``): its mount answers 404 saying how to
turn it on, instead of falling through to another surface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstash_sim.contract.operation import Operation
from qstash_sim.contract.router import Contract
from qstash_sim.errors import NotFound
from qstash_sim.http.surface import Surface

__all__ = ["disabled_surface"]


class _Off(Contract):
    hint = ""

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]]:
        path = raw_path.split("?", 1)[0]
        raise NotFound(f"no such route: {method.upper()} {path}: {self.hint}")


def disabled_surface(spec: Mapping[str, Any], name: str, mount: tuple[str, ...], hint: str) -> Surface:
    """A surface named ``name`` on ``mount`` whose every path answers 404 ``no such route: ...: <hint>``."""
    contract = _Off.from_spec({**spec, "paths": {}}, check=False)
    assert isinstance(contract, _Off)
    contract.hint = hint
    return Surface(name, mount=mount, contract=contract, handlers={}, description=f"off: {hint}")
