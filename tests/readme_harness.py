"""Runs README.md the way a reader does: every shell, console, Python and YAML block, in order, story by story.

How blocks are read and grouped, the markers and the ``# ->`` output convention: ``readme_blocks.py``.

Running
    Each story runs in a fresh copy of the repository's files (what a clone holds, ``git ls-files``: no
    ``node_modules``, no build output), with the project's existing venv linked in as ``.venv`` (the
    documented prerequisite: ``make serve`` creates it; here, the venv running the suite), in one ``bash``
    (a variable set in one block is there in the next, as in a terminal), with a minimal environment: no
    activated venv (the README spells ``.venv/bin/...``), no proxies, no ``NODE_PATH``/``SAPIOM_*``/
    ``QSTASH_*``. What the harness changes, and why:

    - Long-running commands (``make serve``, ``qstash-sim serve|receive|dev``, ``python -m qstash_sim ...``,
      ``python3 -m http.server``) run in the background, in their own process group, as in another terminal;
      the story goes on once their port accepts a connection (polled, at most 30 s) and stops them (SIGTERM,
      then SIGKILL) at its end. A traceback in their output fails the story.
    - Ports: 8080 and 9000 (the README's simulator and receiver), and every port a long-running command of
      the story listens on, become free loopback ports everywhere in the story (``127.0.0.1:P``,
      ``localhost:P``, ``--port P``, ``PORT=P``, ``http.server P``), expected output included. Default ports
      are made explicit (``make serve`` gets ``PORT=``, ``serve``/``dev`` ``--port``, ``receive`` ``--port``
      and ``--sim``), and ``http.server`` gets ``--bind 127.0.0.1`` (loopback only). Ports nothing in the
      story listens on (``127.0.0.1:9``, ``:1``: refused on purpose) are kept.
    - A story that calls the simulator (8080) without starting one gets the set-up's ``make serve`` first:
      the README's "Set-up" leaves one running.
    - ``make`` gets ``-o .venv/.runtime -o .venv/.installed``: the linked ``.venv`` is the project's own, and
      ``make`` must not reinstall it in editable mode from the temporary copy.
    - npm runs with ``npm_config_prefer_offline=true``: the lockfile's packages come from the npm cache when
      they are there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from readme_blocks import (
    CONSOLE_LANGS,
    PYTHON_LANGS,
    RECEIVER_PORT,
    ROOT,
    SHELL_LANGS,
    SIM_PORT,
    YAML_LANGS,
    Block,
    Command,
    ReadmeError,
    Story,
    background_command,
    console_commands,
    long_running,
    matches,
    python_expectations,
    shell_commands,
    substitute_ports,
    with_make_guard,
)

# The venv running the suite (.venv under make test, .venv-floors under make test-floors): each story's
# checkout links it in as .venv, where the README expects it.
VENV = Path(sys.prefix) if sys.prefix != sys.base_prefix else ROOT / ".venv"
COMMAND_TIMEOUT = 60.0
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
OPTIONAL_TOOLS = ("node", "npm")  # documented as needed only for the SDK story: its absence skips
_ERROR_BODY = re.compile(r'^\s*\{\s*"error"\s*:')  # a JSON error answer printed by an undocumented command
_SIM_URL = re.compile(rf"(?:127\.0\.0\.1|localhost):{SIM_PORT}\b")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------------
# Processes


def story_env(home: Path) -> dict[str, str]:
    """What a fresh terminal has: PATH without an activated venv, no proxies, no project variables."""
    venv_bins = {str(VENV / "bin"), os.environ.get("VIRTUAL_ENV", "/nonexistent") + "/bin"}
    path = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p not in venv_bins)
    env = {
        "PATH": path,
        "HOME": os.environ.get("HOME", str(home)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
        "TMPDIR": str(home),
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "npm_config_prefer_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }
    for name in ("PYENV_ROOT", "PYENV_VERSION", "USER", "LOGNAME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def fresh_checkout(where: Path) -> Path:
    """A copy of the files a clone holds (tracked and new, not ignored), with the project's .venv linked."""
    where.mkdir(parents=True, exist_ok=True)
    for rel in _clone_files():
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            dst = where / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    (where / ".venv").symlink_to(VENV, target_is_directory=True)
    return where


_NOT_CLONED = {".git", ".venv", ".venv-floors", "node_modules", "build", "dist", ".bench", "__pycache__"}


def _clone_files() -> list[str]:
    """The files a clone holds: git's tracked and new files; outside a git checkout, the tree minus build
    output, venvs and caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if listed.returncode == 0:
        return sorted(set(filter(None, listed.stdout.decode().split("\0"))))
    return sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*")
        if p.is_file()
        and not _NOT_CLONED & set(p.relative_to(ROOT).parts)
        and not any(part.endswith((".egg-info", "_cache")) for part in p.relative_to(ROOT).parts)
    )


class Failure(AssertionError):
    """A README block did not do what the README says."""


@dataclass
class Background:
    """A long-running command started by the story."""

    what: str  # where it comes from, for messages
    command: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 15) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        else:  # its children may outlive it
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Shell:
    """One bash for the story: commands run one at a time, each output read up to a sentinel."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.token = f"__readme_done_{secrets.token_hex(6)}__"
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int | None, str]:
        """(exit status, what it printed on stdout and stderr); status None when it timed out or killed bash."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        script = f"{{\n{command}\n}} </dev/null 2>&1\nprintf '\\n{self.token} %s\\n' \"$?\"\n"
        try:
            self.proc.stdin.write(script.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None, "(the story's shell has exited)"
        done = re.compile(rb"\n" + self.token.encode() + rb" (\d+)\n")
        buf = b""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            m = done.search(buf)
            if m:
                return int(m[1]), buf[: m.start()].decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None, buf.decode(errors="replace") + f"\n(still running after {timeout:g} s: stopped)"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None, buf.decode(errors="replace") + "\n(the shell exited)"
                buf += chunk

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=STOP_TIMEOUT)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass


# ---------------------------------------------------------------------------------------------------
# Running a story


def _cut(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else f"{text[:limit]}\n(... {len(text) - limit} more characters)"


def _indent(text: str, by: str = "    ") -> str:
    text = text.rstrip("\n")
    return "\n".join(by + line for line in text.splitlines()) if text else by + "(nothing)"


class StoryRun:
    """Runs one story in its own checkout, shell, ports and background processes."""

    def __init__(self, story: Story, workdir: Path) -> None:
        self.story = story
        self.workdir = workdir
        self.home = workdir / "tmp"
        self.home.mkdir(parents=True, exist_ok=True)
        self.repo = fresh_checkout(workdir / "repo")
        self.env = story_env(self.home)
        self.commands = {  # README line of a shell or console block -> its commands
            b.line: console_commands(b) if b.lang in CONSOLE_LANGS else shell_commands(b)
            for b in story.blocks
            if b.runnable and b.lang in SHELL_LANGS | CONSOLE_LANGS
        }
        self.ports = self._ports()
        self.background: list[Background] = []
        self.shell: Shell | None = None
        self._outputs: dict[int, tuple[str, int | None, str]] = {}  # id(command) -> (ran, status, printed)

    # -- set-up

    def _ports(self) -> dict[int, int]:
        wanted = {SIM_PORT, RECEIVER_PORT}
        for block in self.story.blocks:
            if block.runnable and block.lang in SHELL_LANGS | CONSOLE_LANGS:
                for cmd in self._commands(block):
                    serving = long_running(cmd.text)
                    if serving:
                        wanted.add(serving.port)
        return {port: free_port() for port in sorted(wanted)}

    def _commands(self, block: Block) -> list[Command]:
        return self.commands[block.line]

    def missing_tools(self) -> list[str]:
        """Optional tools the story uses that are not installed."""
        used: set[str] = set()
        for block in self.story.blocks:
            if block.runnable and block.lang in SHELL_LANGS | CONSOLE_LANGS:
                for cmd in self._commands(block):
                    used |= {t for t in OPTIONAL_TOOLS if re.search(rf"(^|[\s;|&(]){t}\s", cmd.text)}
        return sorted(t for t in used if shutil.which(t, path=self.env["PATH"]) is None)

    def _needs_implicit_server(self) -> bool:
        starts_sim = calls_sim = False
        for block in self.story.blocks:
            if not block.runnable:
                continue
            if block.lang in SHELL_LANGS | CONSOLE_LANGS:
                for cmd in self._commands(block):
                    serving = long_running(cmd.text)
                    if serving and serving.port == SIM_PORT and serving.kind != "receive":
                        starts_sim = True
                    elif not serving and _SIM_URL.search(cmd.text):
                        calls_sim = calls_sim or not starts_sim
            elif block.lang in PYTHON_LANGS and _SIM_URL.search(block.text):
                calls_sim = calls_sim or not starts_sim
        return calls_sim and not starts_sim

    # -- running

    def run(self) -> None:
        try:
            self.shell = Shell(self.repo, self.env)
            if self._needs_implicit_server():
                self._start("make serve", "make serve (the README's Set-up leaves it running)")
            previous: Command | None = None
            for block in self.story.blocks:
                if block.output:
                    if previous is None:
                        raise ReadmeError(f"README.md:{block.line - 1}: 'readme: output' follows no command")
                    previous.expected, previous.expected_line = block.text.splitlines(), block.line
                    self._check_output_block(previous)
                    continue
                if not block.runnable:
                    continue
                previous = self._block(block)
            self._check_background_logs()
        finally:
            self.close()

    def _block(self, block: Block) -> Command | None:
        if block.lang in SHELL_LANGS | CONSOLE_LANGS:
            last = None
            for cmd in self._commands(block):
                self._command(cmd)
                last = cmd
            return last
        if block.lang in PYTHON_LANGS:
            self._python(block)
        elif block.lang in YAML_LANGS:
            self._yaml(block)
        elif block.lang == "json":
            self._json(block)
        return None

    def _command(self, cmd: Command) -> None:
        serving = long_running(cmd.text)
        if serving:
            if cmd.expected:
                raise ReadmeError(f"README.md:{cmd.line}: a long-running command cannot have '# ->' output")
            self._start(cmd.text, f"README.md:{cmd.line}: {cmd.text}")
            return
        assert self.shell is not None
        ran = with_make_guard(substitute_ports(cmd.text, self.ports))
        code, printed = self.shell.run(ran)
        self._outputs[id(cmd)] = (ran, code, printed)
        expected = cmd.expected_text
        if expected is None and _ERROR_BODY.match(printed):
            self._fail(cmd, ran, code, printed, "it answered an error, and the README shows no output for it")
        if code != cmd.exit_code or (
            expected is not None and not matches(substitute_ports(expected, self.ports), printed)
        ):
            self._fail(cmd, ran, code, printed)

    def _check_output_block(self, cmd: Command) -> None:
        ran, code, printed = self._outputs.get(id(cmd), ("", None, ""))
        expected = cmd.expected_text or ""
        if not matches(substitute_ports(expected, self.ports), printed):
            self._fail(cmd, ran, code, printed)

    def _start(self, text: str, what: str) -> None:
        serving = long_running(text)
        assert serving is not None
        try:
            command = background_command(text, serving, self.ports)
        except ReadmeError as exc:
            raise Failure(f"{what}\n  {exc}") from None
        log = self.home / f"background-{len(self.background)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.repo,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        bg = Background(what, command, self.ports[serving.port], proc, log)
        self.background.append(bg)
        self._wait_ready(bg)

    def _wait_ready(self, bg: Background) -> None:
        """Poll the port until it accepts (bounded); each pause is a bounded wait on the process itself."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", bg.port), timeout=1):
                    return
            except OSError:
                pass
            try:
                bg.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise Failure(
                f"{bg.what}\n  started as: {bg.command}\n  exited with status {bg.proc.returncode} before "
                f"listening on 127.0.0.1:{bg.port}; it printed:\n{_indent(bg.tail(30))}"
            )
        raise Failure(
            f"{bg.what}\n  started as: {bg.command}\n  did not listen on 127.0.0.1:{bg.port} within "
            f"{READY_TIMEOUT:g} s; it printed:\n{_indent(bg.tail(30))}"
        )

    def _python(self, block: Block) -> None:
        code = substitute_ports(block.text, self.ports)
        python = str(VENV / "bin" / "python")
        if re.search(r"^\s*(async\s+)?def test_", block.text, flags=re.M):
            project = self.workdir / f"pytest-L{block.line}"
            project.mkdir()
            (project / "test_readme_example.py").write_text(code + "\n")
            argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_example.py"]
            proc = subprocess.run(argv, cwd=project, env=self.env, capture_output=True, text=True, timeout=120)
            out = proc.stdout + proc.stderr
            tests = len(re.findall(r"^\s*(?:async\s+)?def test_", block.text, flags=re.M))
            if proc.returncode != 0 or not re.search(rf"\b{tests} passed\b", out) or re.search(r"skipped|xfail", out):
                raise Failure(
                    f"README.md:{block.line}: this Python block (a pytest file, story {self.story.heading!r}) "
                    f"did not pass as written: expected {tests} passed, nothing skipped\n  ran: pytest "
                    f"test_readme_example.py in a fresh project directory\n  exit status: {proc.returncode}\n"
                    f"  printed:\n{_indent(out[-4000:])}"
                )
            return
        script = self.home / f"readme-L{block.line}.py"
        script.write_text(code + "\n")
        proc = subprocess.run(
            [python, str(script)], cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
        wanted, line = python_expectations(block)
        expected = "\n".join(substitute_ports(w, self.ports) for w in wanted)
        if proc.returncode != 0 or (wanted and not matches(expected, proc.stdout)):
            raise Failure(
                f"README.md:{block.line}: this Python block (story {self.story.heading!r}) did not do what the "
                f"README says\n  ran: .venv/bin/python <the block> (from the repository's root)\n"
                f"  exit status: {proc.returncode}\n  printed:\n{_indent(proc.stdout + proc.stderr)}\n"
                + (f"  expected (README.md:{line}):\n{_indent(expected)}\n" if wanted else "")
                + _HOW
            )

    def _yaml(self, block: Block) -> None:
        path = self.home / f"readme-L{block.line}.yaml"
        path.write_text(block.text + "\n")
        if block.same_as:
            self._same_as(block, yaml.safe_load(block.text), yaml.safe_load((self.repo / block.same_as).read_text()))
        check = [str(VENV / "bin" / "qstash-sim"), "check", str(path)]
        proc = subprocess.run(check, cwd=self.repo, env=self.env, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or not proc.stdout.startswith("ok"):
            raise Failure(
                f"README.md:{block.line}: this YAML block (a fault scenario, story {self.story.heading!r}) is "
                f"not valid\n  ran: qstash-sim check <the block>\n  exit status: {proc.returncode}\n  printed:\n"
                f"{_indent(proc.stdout + proc.stderr)}\n  (a YAML block that is not a scenario needs "
                "<!-- readme: skip — why --> above it)"
            )

    def _json(self, block: Block) -> None:
        try:
            data = json.loads(block.text)
        except ValueError as exc:
            raise Failure(f"README.md:{block.line}: this JSON block does not parse: {exc}") from None
        if block.same_as:
            self._same_as(block, data, json.loads((self.repo / block.same_as).read_text()))

    def _same_as(self, block: Block, mine: object, theirs: object) -> None:
        if mine != theirs:
            raise Failure(
                f"README.md:{block.line}: this block says it is {block.same_as} (readme: same-as), but they "
                f"differ\n  README:\n{_indent(json.dumps(mine, indent=1))}\n  {block.same_as}:\n"
                f"{_indent(json.dumps(theirs, indent=1))}"
            )

    def _fail(self, cmd: Command, ran: str, code: int | None, printed: str, why: str = "") -> None:
        swapped = ", ".join(f"{a}->{b}" for a, b in self.ports.items())
        parts = [
            f"README.md:{cmd.line}: this command (story {self.story.heading!r}, README.md:{self.story.line}) "
            "did not do what the README says" + (f": {why}" if why else ""),
            f"  command (as written):\n{_indent(cmd.text)}",
            f"  ran as (ports {swapped}):\n{_indent(ran)}" if ran != cmd.text else "",
            f"  exit status: {code if code is not None else 'none (stopped)'}"
            + (f", expected {cmd.exit_code}" if code != cmd.exit_code else ""),
            f"  printed:\n{_indent(_cut(printed))}",
        ]
        if cmd.expected_text is not None:
            parts.append(
                f"  expected (README.md:{cmd.expected_line}; '...' matches anything, whitespace runs compare "
                f"equal):\n{_indent(substitute_ports(cmd.expected_text, self.ports))}"
            )
        for bg in self.background:
            state = "running" if bg.proc.poll() is None else f"exited {bg.proc.returncode}"
            parts.append(
                f"  in the background: {bg.what} ({state}, port {bg.port}); its last lines:\n"
                f"{_indent(bg.tail(), '      ')}"
            )
        parts.append(_HOW)
        raise Failure("\n".join(p for p in parts if p))

    def _check_background_logs(self) -> None:
        for bg in self.background:
            text = bg.log.read_text(errors="replace")
            if "Traceback (most recent call last)" in text:
                raise Failure(f"{bg.what}\n  printed a traceback while the story ran:\n{_indent(bg.tail(40))}")

    def close(self) -> None:
        for bg in reversed(self.background):
            bg.stop()
        if self.shell is not None:
            self.shell.close()


_HOW = (
    "  Fix the README block or the code so that they agree (see tests/readme_harness.py for what the harness "
    "substitutes); a block not meant to be run takes <!-- readme: skip — why --> on the line above its fence."
)
