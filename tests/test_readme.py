"""README.md is true: every block a reader is meant to run is run as written and prints what it shows.

One test per story (the blocks under one heading), each in a fresh copy of the repository with its own
free ports and background servers. How blocks are found, grouped, run and compared, and what the harness
substitutes (ports, ``make``'s venv), is in ``tests/readme_harness.py``. The harness's own behaviour (how
it splits commands, what it substitutes, that a wrong block fails naming its line) is tested below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import readme_blocks as rb
import readme_harness as rh

_BLOCKS, _PROBLEMS = rb.parse(rb.README.read_text())
_STORIES = [s for s in rb.stories(_BLOCKS) if s.runnable]


def test_every_block_is_run_or_says_why() -> None:
    assert not _PROBLEMS, "README.md cannot be run as it stands:\n" + "\n".join(_PROBLEMS)
    assert _STORIES, "no runnable block found in README.md"
    for block in _BLOCKS:
        assert block.runnable or block.output or block.skip, block


@pytest.mark.parametrize("story", _STORIES, ids=rb.story_ids(_STORIES))
def test_readme_story(story: rb.Story, tmp_path: Path) -> None:
    run = rh.StoryRun(story, tmp_path)
    missing = run.missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: this story needs it (Node.js 18+ and npm)")
    run.run()


# ---------------------------------------------------------------------------------------------------
# The harness itself


def _block(text: str, lang: str = "sh", line: int = 10) -> rb.Block:
    return rb.Block(lang, text, line, "Demo", 1)


def test_commands_end_where_bash_could_run_them() -> None:
    block = _block(
        "S=http://127.0.0.1:8080/v1\n"
        "\n"
        "# prose, not run\n"
        'curl -s -X POST "$S/a" \\\n'
        "     -d '{\"a\":1}'\n"
        '# -> {"messageId":"msg_..."}\n'
        "curl -s -d '[\n"
        '  1]\' "$S/b"   # -> [1]\n'
        "for i in 1 2; do echo $i; \\\n"
        "  done      # -> 1 2\n"
        "echo '# -> not a comment'\n"
    )
    cmds = rb.shell_commands(block)
    assert [(c.line, c.expected, c.expected_line) for c in cmds] == [
        (10, [], None),
        (13, ['{"messageId":"msg_..."}'], 15),
        (16, ["[1]"], 17),
        (18, ["1 2"], 19),
        (20, [], None),
    ]
    assert cmds[1].text.count("\n") == 1 and cmds[2].text.endswith('"$S/b"   # -> [1]')


def test_console_blocks_pair_commands_with_their_output() -> None:
    block = _block("$ echo one \\\n  two\none two\n$ false\n(exit 1)\n", lang="console")
    one, two = rb.console_commands(block)
    assert (one.text, one.expected_text, one.exit_code) == ("echo one \\\n  two", "one two", 0)
    assert (two.expected_text, two.exit_code) == ("", 1)


def test_output_matching_is_exact_but_for_dots_and_whitespace() -> None:
    assert rb.matches('{"messageId":"msg_...","url":"u"}', '{"messageId":"msg_Ab12","url":"u"}')
    assert rb.matches("402 429 429 200", "402\n429\n429\n200\n")
    assert not rb.matches("402 429 429 200", "402\n429\n200\n")
    assert not rb.matches('{"total":"0.00004",...}', '{"total":"0",...}')
    assert not rb.matches("ok", "ok and more")


def test_long_running_commands_and_their_ports() -> None:
    lr = rb.long_running
    assert lr("make serve") == rb.LongRunning("make-serve", 8080)
    assert lr("make serve ARGS='--clock virtual' PORT=9100   # comment") == rb.LongRunning("make-serve", 9100)
    assert lr(".venv/bin/qstash-sim receive --port 9001") == rb.LongRunning("receive", 9001)
    assert lr("python -m qstash_sim serve --port=7000") == rb.LongRunning("serve", 7000)
    assert lr("python3 -m http.server 9000   # a destination") == rb.LongRunning("http.server", 9000)
    for not_long in ("make test", "qstash-sim serve --help", "qstash-sim check x.yaml", "curl -s x", "make e2e-deps"):
        assert lr(not_long) is None, not_long
    ports = {8080: 41000, 9000: 41001}
    assert rb.substitute_ports("curl 127.0.0.1:8080/x localhost:9000 127.0.0.1:9/down :80800", ports) == (
        "curl 127.0.0.1:41000/x localhost:41001 127.0.0.1:9/down :80800"
    )
    assert rb.background_command("make serve ARGS='--seed 7'", lr("make serve") or rb.LongRunning("", 0), ports) == (
        "make -o .venv/.runtime -o .venv/.installed serve ARGS='--seed 7' PORT=41000"
    )
    receive = rb.LongRunning("receive", 9000)
    assert rb.background_command(".venv/bin/qstash-sim receive  # here", receive, ports) == (
        ".venv/bin/qstash-sim receive --port 41001 --sim http://127.0.0.1:41000"
    )
    server = rb.LongRunning("http.server", 9000)
    assert rb.background_command("python3 -m http.server 9000", server, ports) == (
        "python3 -m http.server 41001 --bind 127.0.0.1"
    )
    with pytest.raises(rb.ReadmeError):
        rb.background_command("make serve && echo hi", rb.LongRunning("make-serve", 8080), ports)


def test_markers_are_read_and_mistakes_named() -> None:
    blocks, problems = rb.parse(
        "# T\n"
        "<!-- readme: skip — installs into your own project -->\n"
        "```sh\npip install x\n```\n"
        "<!-- readme: output -->\n"
        "```text\nhello\n```\n"
        "```\nunlabelled\n```\n"
        "<!-- readme: skip -->\n"
        "```sh\necho\n```\n"
        "<!-- readme: skp — typo -->\n"
        "```sh\necho\n```\n"
        "<!-- readme: skip — dangling -->\n"
        "\n"
        "text `` ```inline``` `` stays text\n"
    )
    assert [(b.lang, b.skip, b.output, b.line) for b in blocks[:2]] == [
        ("sh", "installs into your own project", False, 4),
        ("text", None, True, 8),
    ]
    assert [p.split(":")[1] for p in problems] == ["10", "13", "17", "21"], problems
    assert "no runner" in problems[0] and "needs a reason" in problems[1] and "unknown marker" in problems[2]


def test_stories_group_blocks_by_heading() -> None:
    blocks, _ = rb.parse("# A\n```sh\na\n```\n## B\n```sh\nb\n```\ntext\n```sh\nc\n```\n# B\n```sh\nd\n```\n")
    found = rb.stories(blocks)
    assert [(s.heading, len(s.blocks)) for s in found] == [("A", 1), ("B", 2), ("B", 1)]
    assert rb.story_ids(found) == ["a", "b-L5", "b-L13"]


def _story(markdown: str) -> rb.Story:
    blocks, problems = rb.parse(markdown)
    assert not problems, problems
    [story] = rb.stories(blocks)
    return story


def test_a_story_runs_servers_in_the_background_on_substituted_ports(tmp_path: Path) -> None:
    story = _story(
        "# Demo\n"
        "```sh\n"
        "python3 -m http.server 9000\n"
        "```\n"
        "```sh\n"
        "U=http://127.0.0.1:9000\n"
        "curl -s -o /dev/null -w '%{http_code}' \"$U/\"   # -> 200\n"
        'echo "$U"\n'
        "# -> http://127.0.0.1:9000\n"
        "```\n"
    )
    rh.StoryRun(story, tmp_path).run()


def test_a_wrong_block_names_its_line_command_output_and_expectation(tmp_path: Path) -> None:
    story = _story("# Demo\ntext\n```sh\necho ready\nprintf 'got %s\\n' 402 429   # -> got 402 got 429 got 200\n```\n")
    with pytest.raises(rh.Failure) as failure:
        rh.StoryRun(story, tmp_path).run()
    message = str(failure.value)
    assert "README.md:5: this command (story 'Demo', README.md:1)" in message
    assert "printf 'got %s\\n' 402 429" in message
    assert "printed:\n    got 402\n    got 429" in message
    assert "expected (README.md:5;" in message and "got 402 got 429 got 200" in message


def test_a_failing_command_fails_even_without_documented_output(tmp_path: Path) -> None:
    story = _story("# Demo\n```sh\ncurl -s --max-time 5 http://127.0.0.1:9/down\n```\n")
    with pytest.raises(rh.Failure, match=r"exit status: 7, expected 0"):
        rh.StoryRun(story, tmp_path / "refused").run()
    quiet_404 = _story('# Demo\n```sh\necho \'{"error":"message msg_... not found"}\'\n```\n')
    with pytest.raises(rh.Failure, match=r"README.md:3: .*it answered an error, and the README shows no output"):
        rh.StoryRun(quiet_404, tmp_path / "error").run()
    meant = _story("# Demo\n```sh\nfalse   # -> (exit 1)\ngrep -c x /dev/null\n# -> (exit 1) 0\n```\n")
    rh.StoryRun(meant, tmp_path / "meant").run()


def test_the_sapiom_app_pins_the_sdk_the_end_to_end_tests_drive() -> None:
    """examples/sapiom-app (the README's payment story) installs offline from its lockfile, the same
    @sapiom packages at the same integrity as tests/e2e."""
    import json

    def sapiom(lock: Path) -> dict[str, tuple[str, str]]:
        packages = json.loads(lock.read_text())["packages"]
        return {k: (v["version"], v["integrity"]) for k, v in packages.items() if k.startswith("node_modules/@sapiom/")}

    app = sapiom(rb.ROOT / "examples" / "sapiom-app" / "package-lock.json")
    assert app and app == sapiom(rb.ROOT / "tests" / "e2e" / "package-lock.json")
    manifest = json.loads((rb.ROOT / "examples" / "sapiom-app" / "package.json").read_text())
    assert manifest["dependencies"] == {"@sapiom/fetch": app["node_modules/@sapiom/fetch"][0]}
