"""Validating scenario files without serving: ``qstash-sim check`` and ``serve --scenario``.

Both take the ``{operationId: x-fault-statuses}`` of the contract the files are checked against
(:func:`qstash_sim.contract.router.fault_statuses`), so this package never reads the contract itself.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping
from pathlib import Path

from qstash_sim.errors import ConfigError
from qstash_sim.scenarios.loader import ScenarioError, load_scenario
from qstash_sim.scenarios.model import Scenario
from qstash_sim.scenarios.runtime import resolve

__all__ = ["check_files", "check_main", "read_scenarios"]

FaultStatuses = Mapping[str, Collection[int]]


def read_scenarios(sources: Collection[str | Path], allowed: FaultStatuses) -> tuple[list[Scenario], list[str]]:
    """Validate files or shipped names for ``serve --scenario``:
    ``(scenarios, [])`` or ``([], every "file:line: key.path: problem" line)``."""
    scenarios: list[Scenario] = []
    errors: list[str] = []
    for source in sources:
        try:
            scenarios.append(load_scenario(resolve(source), operations=set(allowed), allowed_statuses=allowed))
        except ScenarioError as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(str(exc))
    return ([], errors) if errors else (scenarios, [])


def check_files(
    paths: Collection[str | Path],
    *,
    operations: Collection[str] | None = None,
    allowed_statuses: FaultStatuses | None = None,
) -> list[str]:
    """Validate files without serving; the error lines of all of them (empty: all good)."""
    errors: list[str] = []
    for p in paths:
        try:
            load_scenario(resolve(p), operations=operations, allowed_statuses=allowed_statuses)
        except ScenarioError as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(str(exc))
    return errors


def check_main(argv: list[str], allowed: FaultStatuses | None = None) -> int:
    """``qstash-sim check FILE...``: print each problem to stderr; exit status 0 when every file is valid."""
    errors = check_files(argv, operations=None if allowed is None else set(allowed), allowed_statuses=allowed)
    for line in errors:
        print(line, file=sys.stderr)
    if not errors:
        for p in argv:
            print(f"ok: {p}")
    return 1 if errors or not argv else 0
