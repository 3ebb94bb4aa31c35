"""Reading README.md as the harness runs it: blocks, stories, markers, commands, documented output, ports.

Parsing
    A *story* is the run of fenced blocks under one heading (the nearest ``#``, ``##``, ``###`` ... above
    them). Blocks run in README order; a story stops at its first failure. A block is run unless the line
    right above its opening fence says why not::

        <!-- readme: skip — installs into your own project; tests/test_downstream.py covers it -->

    Other markers (same place): ``<!-- readme: output -->`` (the block is what the previous command prints)
    and ``<!-- readme: same-as PATH -->`` (a YAML/JSON block says the same as that file of the repository).

    Runners by language: ``sh``/``bash``/``shell`` (commands), ``console`` (``$ command`` lines, the lines
    after them are its output), ``python``/``py`` (a script, or a pytest file when it defines ``test_``
    functions), ``yaml``/``yml`` (a fault scenario: ``qstash-sim check`` must say ``ok``), ``json`` (must
    parse). Any other language (or none) needs a marker, so a block added later cannot go unrun silently.

Documented output
    ``# -> TEXT`` at the end of a command's last line, or on comment lines right after it (several lines
    join), is what the command prints; in Python, on the line that prints it. ``...`` matches anything,
    every run of whitespace compares equal to one space, and ``(exit N)`` first means the command must exit
    with N (otherwise every command must exit 0). Other comments are prose. A command with no documented
    output must not print a JSON error answer (``{"error": ...}``: a curl example that quietly 404s).

How the stories run (fresh checkout, background servers, substituted ports): ``readme_harness.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

SHELL_LANGS = {"sh", "bash", "shell", "zsh"}
CONSOLE_LANGS = {"console", "shell-session"}
PYTHON_LANGS = {"python", "py", "python3"}
YAML_LANGS = {"yaml", "yml"}
RUNNABLE = SHELL_LANGS | CONSOLE_LANGS | PYTHON_LANGS | YAML_LANGS | {"json"}

SIM_PORT, RECEIVER_PORT = 8080, 9000  # the README's ports, always replaced

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_MARKER = re.compile(r"^\s*<!--\s*readme:\s*(?P<body>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\b\s*(?:—|–|--|-|:)?\s*(?P<reason>.*)$")
_EXPECT_LINE = re.compile(r"^\s*#\s*->\s?(?P<text>.*)$")
_EXPECT_TAIL = re.compile(r"\s#\s*->\s?(?P<text>.*)$")
_EXIT = re.compile(r"^\(exit (?P<code>\d+)\)\s*")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PORT_FORMS = (
    re.compile(r"((?:127\.0\.0\.1|localhost|\[::1\]):)(\d+)\b"),
    re.compile(r"(\bPORT=)(\d+)\b"),
    re.compile(r"(--port[= ])(\d+)\b"),
    re.compile(r"(http\.server\s+)(\d+)\b"),
)


class ReadmeError(Exception):
    """The README cannot be run as it stands (a marker or a block the harness cannot read)."""


# ---------------------------------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    lang: str
    text: str
    line: int  # README line of the first line inside the fence
    heading: str
    heading_line: int
    skip: str | None = None  # the reason, when marked skip
    output: bool = False  # <!-- readme: output -->
    same_as: str | None = None  # <!-- readme: same-as PATH -->

    @property
    def runnable(self) -> bool:
        return self.skip is None and not self.output


@dataclass(frozen=True)
class Story:
    """The blocks under one heading."""

    heading: str
    line: int
    blocks: tuple[Block, ...]

    @property
    def runnable(self) -> bool:
        return any(b.runnable for b in self.blocks)


def parse(text: str) -> tuple[list[Block], list[str]]:
    """The README's fenced blocks and the problems found reading them (``README.md:N: ...`` lines)."""
    blocks: list[Block] = []
    problems: list[str] = []
    lines = text.splitlines()
    heading, heading_line = "README.md (top)", 1
    markers: list[tuple[int, str]] = []  # consecutive marker lines right above the current line
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            marker = _MARKER.match(line)
            if marker:
                markers.append((i + 1, marker["body"]))
            else:
                if markers:
                    problems.append(f"README.md:{markers[0][0]}: a readme: marker must be right above a ``` fence")
                markers = []
                title = _HEADING.match(line)
                if title:
                    heading, heading_line = title["title"], i + 1
            i += 1
            continue
        opener, indent = fence["fence"], len(fence["indent"])
        info = fence["info"].strip()
        if opener[0] == "`" and "`" in info:  # an inline code span, not a fence
            i += 1
            continue
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(opener[0])}{{{len(opener)},}}\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        if j == len(lines):
            problems.append(f"README.md:{i + 1}: this ``` fence is never closed")
        lang = info.split()[0].lower() if info else ""
        block = Block(lang, "\n".join(body), i + 2, heading, heading_line)
        block = _apply_markers(block, markers, problems)
        if block.runnable and lang not in RUNNABLE:
            what = f"language {lang!r}" if lang else "no language"
            problems.append(
                f"README.md:{i + 1}: a block with {what} has no runner: label it (sh, console, python, yaml, json) "
                "or mark it on the line above, e.g. <!-- readme: skip — why it is not run -->"
            )
        blocks.append(block)
        markers = []
        i = j + 1
    if markers:
        problems.append(f"README.md:{markers[0][0]}: a readme: marker must be right above a ``` fence")
    return blocks, problems


def _apply_markers(block: Block, markers: list[tuple[int, str]], problems: list[str]) -> Block:
    skip, output, same_as = block.skip, block.output, block.same_as
    for lineno, body in markers:
        s = _SKIP.match(body)
        if s:
            skip = s["reason"].strip()
            if not skip:
                problems.append(f"README.md:{lineno}: readme: skip needs a reason (<!-- readme: skip — why -->)")
        elif body == "output":
            output = True
        elif body.startswith("same-as "):
            same_as = body.split(None, 1)[1].strip()
        else:
            problems.append(
                f"README.md:{lineno}: unknown marker 'readme: {body}'; expected 'skip — reason', 'output' or "
                "'same-as PATH'"
            )
    return Block(block.lang, block.text, block.line, block.heading, block.heading_line, skip, output, same_as)


def stories(blocks: list[Block]) -> list[Story]:
    """Blocks grouped by heading, in README order."""
    out: list[Story] = []
    for block in blocks:
        if out and out[-1].line == block.heading_line:
            out[-1] = Story(out[-1].heading, out[-1].line, (*out[-1].blocks, block))
        else:
            out.append(Story(block.heading, block.heading_line, (block,)))
    return out


def story_ids(all_stories: list[Story]) -> list[str]:
    """Readable, unique test ids (the heading; a repeated heading gets its line)."""
    names = [re.sub(r"[^A-Za-z0-9]+", "-", s.heading).strip("-").lower() or "story" for s in all_stories]
    return [n if names.count(n) == 1 else f"{n}-L{s.line}" for n, s in zip(names, all_stories, strict=True)]


# ---------------------------------------------------------------------------------------------------
# Commands


@dataclass
class Command:
    """One shell command of a block, with what the README says it prints."""

    text: str  # as written (continuation lines included)
    line: int  # README line of its first line
    expected: list[str] = field(default_factory=list)
    expected_line: int | None = None

    @property
    def exit_code(self) -> int:
        m = _EXIT.match(self.expected[0]) if self.expected else None
        return int(m["code"]) if m else 0

    @property
    def expected_text(self) -> str | None:
        if not self.expected:
            return None
        return _EXIT.sub("", "\n".join(self.expected), count=1)


def _complete(src: str) -> bool:
    """Whether ``src`` is one whole shell command (bash parses it, and no line continues)."""
    if src.rstrip().endswith("\\"):
        return False
    return subprocess.run(["bash", "-n"], input=src, text=True, capture_output=True, timeout=10).returncode == 0


def shell_commands(block: Block) -> list[Command]:
    """Split a sh block into commands: a command ends where bash could run it (quotes, loops, ``\\``)."""
    commands: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(block.text.splitlines()):
        lineno = block.line + offset
        if not pending:
            if not line.strip():
                continue
            expect = _EXPECT_LINE.match(line)
            if expect:
                if not commands:
                    raise ReadmeError(f"README.md:{lineno}: '# ->' output with no command before it")
                _expect(commands[-1], expect["text"], lineno)
                continue
            if line.lstrip().startswith("#"):
                continue
            start = lineno
        pending.append(line)
        src = "\n".join(pending)
        if _complete(src):
            cmd = Command(src, start)
            tail = _EXPECT_TAIL.search(pending[-1])
            if tail and _complete("\n".join([*pending[:-1], pending[-1][: tail.start()]])):
                _expect(cmd, tail["text"], lineno)
            commands.append(cmd)
            pending = []
    if pending:
        raise ReadmeError(f"README.md:{start}: this command never ends (an open quote, loop or trailing \\)")
    return commands


def console_commands(block: Block) -> list[Command]:
    """Split a console block: ``$ command`` (continued as bash needs), then the lines it prints."""
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line, lineno = lines[i], block.line + i
        if not line.startswith("$ "):
            if commands:
                _expect(commands[-1], line, lineno)
            elif line.strip():
                raise ReadmeError(f"README.md:{lineno}: a console block starts with '$ command'")
            i += 1
            continue
        pending = [line[2:]]
        while not _complete("\n".join(pending)) and i + 1 < len(lines):
            i += 1
            pending.append(re.sub(r"^> ", "", lines[i]))
        commands.append(Command("\n".join(pending), lineno))
        i += 1
    for cmd in commands:
        while cmd.expected and not cmd.expected[-1].strip():
            cmd.expected.pop()
    return commands


def _expect(cmd: Command, text: str, lineno: int) -> None:
    cmd.expected.append(text)
    if cmd.expected_line is None:
        cmd.expected_line = lineno


def python_expectations(block: Block) -> tuple[list[str], int | None]:
    """The ``# -> TEXT`` comments of a Python block, in order, and the line of the first."""
    found: list[str] = []
    first: int | None = None
    for offset, line in enumerate(block.text.splitlines()):
        m = _EXPECT_TAIL.search(line) or _EXPECT_LINE.match(line)
        if m:
            found.append(m["text"])
            first = first or block.line + offset
    return found, first


def matches(expected: str, printed: str) -> bool:
    """``printed`` says ``expected``: ``...`` matches anything, runs of whitespace compare equal."""
    want, got = " ".join(expected.split()), " ".join(printed.split())
    pattern = ".*?".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, got, flags=re.DOTALL) is not None


# ---------------------------------------------------------------------------------------------------
# Long-running commands and ports


@dataclass(frozen=True)
class LongRunning:
    """A command that serves until stopped, and the README port it listens on."""

    kind: str  # make-serve | serve | dev | receive | http.server
    port: int


def long_running(text: str) -> LongRunning | None:
    """Whether a command serves until stopped (``make serve``, ``qstash-sim serve`` ...), and on which port."""
    try:
        words = shlex.split(_strip_comment(text).rstrip("& \n"))
    except ValueError:
        return None
    while words and _ASSIGN.match(words[0]):
        words = words[1:]
    if not words or {"-h", "--help", "--version"} & set(words):
        return None
    prog = os.path.basename(words[0])
    if prog == "make":
        if "serve" not in [w for w in words[1:] if not w.startswith("-") and "=" not in w]:
            return None
        port = next((int(w[5:]) for w in words if w.startswith("PORT=") and w[5:].isdigit()), SIM_PORT)
        return LongRunning("make-serve", port)
    sub = None
    if prog == "qstash-sim" and len(words) > 1:
        sub, rest = words[1], words[2:]
    elif re.fullmatch(r"python(3(\.\d+)?)?", prog) and words[1:3] == ["-m", "qstash_sim"] and len(words) > 3:
        sub, rest = words[3], words[4:]
    elif re.fullmatch(r"python(3(\.\d+)?)?", prog) and words[1:3] == ["-m", "http.server"]:
        port = next((int(w) for w in words[3:] if w.isdigit()), 8000)
        return LongRunning("http.server", port)
    if sub in ("serve", "dev", "receive"):
        default = RECEIVER_PORT if sub == "receive" else SIM_PORT
        return LongRunning(sub, _option_port(rest, default))
    return None


def _option_port(words: list[str], default: int) -> int:
    for k, w in enumerate(words):
        if w == "--port" and k + 1 < len(words) and words[k + 1].isdigit():
            return int(words[k + 1])
        if w.startswith("--port=") and w[7:].isdigit():
            return int(w[7:])
    return default


def _strip_comment(text: str) -> str:
    """A one-line command without its trailing ``# ...`` comment (quotes respected)."""
    quote = None
    for k, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or text[k - 1].isspace()):
            return text[:k].rstrip()
    return text


def substitute_ports(text: str, ports: dict[int, int]) -> str:
    """README ports replaced by the story's ports wherever a port is named (other ports are kept)."""

    def swap(m: re.Match[str]) -> str:
        port = int(m.group(2))
        return f"{m.group(1)}{ports[port]}" if port in ports else m.group(0)

    for form in _PORT_FORMS:
        text = form.sub(swap, text)
    return text


def background_command(text: str, serving: LongRunning, ports: dict[int, int]) -> str:
    """The long-running command as the harness starts it: ports substituted and made explicit."""
    cmd = substitute_ports(_strip_comment(text).rstrip("& \n"), ports)
    if any(op in cmd for op in ("|", "&&", ";", "\n")):
        raise ReadmeError("a long-running command must stand alone on its line (no pipes, ';' or '&&')")
    words = shlex.split(cmd)
    if serving.kind == "make-serve" and not any(w.startswith("PORT=") for w in words):
        cmd += f" PORT={ports[serving.port]}"
    elif serving.kind in ("serve", "dev", "receive") and not any(w.startswith("--port") for w in words):
        cmd += f" --port {ports[serving.port]}"
    if serving.kind == "receive" and not any(w.startswith("--sim") for w in words):
        cmd += f" --sim http://127.0.0.1:{ports[SIM_PORT]}"
    if serving.kind == "http.server":
        if not any(w.isdigit() for w in words[3:]):
            cmd += f" {ports[serving.port]}"
        if not any(w in ("-b", "--bind") or w.startswith("--bind=") for w in words):
            cmd += " --bind 127.0.0.1"
    return with_make_guard(cmd)


def with_make_guard(cmd: str) -> str:
    """``make`` told not to rebuild the linked ``.venv`` (see the module docstring)."""
    return re.sub(
        r"^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)make\b", r"\1make -o .venv/.runtime -o .venv/.installed", cmd
    )
