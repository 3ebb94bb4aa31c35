"""Reading one scenario document, bounded: YAML with the line of every key, and errors as
``file:line: key.path: problem`` (:class:`ScenarioError`). :mod:`qstash_sim.scenarios.loader` validates and
builds what this reads.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import yaml

from qstash_sim.errors import ConfigError

__all__ = [
    "MAX_SCENARIO_BYTES",
    "MAX_SCENARIO_DEPTH",
    "MAX_SCENARIO_NODES",
    "Path_",
    "Reporter",
    "ScenarioError",
    "compose",
    "did_you_mean",
    "fmt_path",
]

# Bounds of one scenario document, whatever reads it (file, control API, marker): a real scenario is a few
# KB, a few hundred values deep at most. Past them the document is refused before it can cost memory: an
# alias bomb (``&a [*b, *b, ...]`` nested) would otherwise expand to gigabytes from a few hundred bytes.
MAX_SCENARIO_BYTES = 1024 * 1024
MAX_SCENARIO_NODES = 20_000  # values read, aliases counted each time they are used
MAX_SCENARIO_DEPTH = 64


class ScenarioError(ConfigError):
    """A scenario that cannot be loaded. ``errors`` holds one ``file:line: key.path: problem`` per mistake."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


Path_: TypeAlias = tuple[str | int, ...]
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML and remember the line of every key: ``"a:\\n  b: 1"`` -> ``({"a": {"b": 1}}, {(): 1, ("a",): 1,
    ("a", "b"): 2})``. Duplicate keys are an error (PyYAML would silently keep the last).

    Bounded: at most :data:`MAX_SCENARIO_BYTES` of text, :data:`MAX_SCENARIO_NODES` values (an alias counts
    every time it is used, so an alias bomb stops within milliseconds) and :data:`MAX_SCENARIO_DEPTH` levels.
    """
    if len(text) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            [f"{source}: {len(text)} characters is over the limit of {MAX_SCENARIO_BYTES} for a scenario"]
        )
    try:
        # libyaml's loader when PyYAML has it: fast, and it refuses absurd nesting in its scanner.
        loader = _LOADER(text)  # checks the characters first: a control character raises here
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{source}:1: YAML syntax error: {' '.join(str(exc).split())}"]) from None
    lines: dict[Path_, int] = {}
    errors: list[str] = []
    budget = [MAX_SCENARIO_NODES]

    def build(node: yaml.Node, path: Path_) -> Any:
        budget[0] -= 1
        line = node.start_mark.line + 1
        if budget[0] < 0:
            raise ScenarioError(
                [
                    f"{source}:{line}: {fmt_path(path)}: more than {MAX_SCENARIO_NODES} values (aliases count each "
                    "time they are used); a scenario this large is refused"
                ]
            )
        if len(path) > MAX_SCENARIO_DEPTH:
            raise ScenarioError(
                [f"{source}:{line}: {fmt_path(path)}: nested more than {MAX_SCENARIO_DEPTH} levels deep"]
            )
        lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # resolves "<<: *anchor" merges
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    errors.append(
                        f"{source}:{key_node.start_mark.line + 1}: {fmt_path(path)}: a key must be a plain value"
                    )
                    continue
                key = loader.construct_object(key_node, deep=True)
                key = key if isinstance(key, str) else str(key)
                line = key_node.start_mark.line + 1
                if key in out:
                    errors.append(f"{source}:{line}: {fmt_path(path + (key,))}: duplicate key")
                lines[path + (key,)] = line
                out[key] = build(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, path + (i,)) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    try:
        root = loader.get_single_node()
        data = None if root is None else build(root, ())
    except RecursionError:  # PyYAML's composer recurses per level: "[[[[..." 100k deep
        raise ScenarioError([f"{source}: nested more than {MAX_SCENARIO_DEPTH} levels deep"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ScenarioError([f"{where}: YAML syntax error: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{source}: YAML error: {' '.join(str(exc).split())}"]) from None
    finally:
        loader.dispose()
    if errors:
        raise ScenarioError(errors)
    return data, lines


def fmt_path(path: Iterable[str | int]) -> str:
    """``("rules", 0, "match", "operaton")`` -> ``"rules[0].match.operaton"``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class Reporter:
    """Collects errors as ``file:line: key.path: problem``."""

    def __init__(self, source: str, lines: Mapping[Path_, int]) -> None:
        self.source = source
        self.lines = lines
        self.errors: list[tuple[int, str]] = []
        self.bad: set[Path_] = set()  # paths with an error: the builder skips what lies under them

    def line_of(self, path: Path_) -> int | None:
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def add(self, path: Path_, problem: str) -> None:
        line = self.line_of(path)
        where = f"{self.source}:{line}" if line is not None else self.source
        text = f"{where}: {fmt_path(path)}: {problem}"
        self.bad.add(path)
        if (line or 0, text) not in self.errors:
            self.errors.append((line or 0, text))

    def broken(self, path: Path_) -> bool:
        """Whether an error was reported at ``path``, under it, or above it."""
        n = len(path)
        return any(p[:n] == path or path[: len(p)] == p for p in self.bad)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ScenarioError([text for _, text in sorted(self.errors, key=lambda e: e[0])])


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'operation'?"`` or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
