"""The destination grammar: ``components.schemas.Destination`` in openapi.yaml admits exactly what the gateway's
:func:`~qstash_sim.http.headers.parse_destination` accepts.

Negative-mode fuzzing found a batch item ``destination`` that the spec's ``pattern`` refused accepted with 200
(a mixed-case, percent-encoded ``HTTps%3A%2f%2F...``): the pattern described fully encoded URLs only, while
the gateway decodes once whatever it gets, and it let through hosts such as ``*`` or ``user@``. Both now
follow one rule, the one a QStash user relies on:

* **Decoded once, whatever the spelling.** A destination that does not start with ``http(s)://`` is
  percent-decoded once; what comes out must be a URL. Percent-encoding's hex digits and the scheme are
  case-insensitive (RFC 3986, 2.1 and 3.1), and nothing says every character must be encoded, so
  ``HTTps%3A%2f%2Fexample.com/a`` and Python's ``quote(url)`` (``https%3A//example.com/a``) are URLs, as they
  are to QStash. The pattern used to refuse them: the spec was wrong there, and now admits every spelling
  that decodes once to a URL.
* **A URL a delivery can reach.** The host is a name, an IPv4 address or an ``[IPv6]`` one, the port
  0-65535, the text printable ASCII with ``%`` only in escapes (what every HTTP client sends: ``fetch`` and
  ``requests`` percent-encode the rest), no ``user@`` (credentials go in ``Upstash-Forward-Authorization``;
  an ``@`` in the authority is also the classic way to make two URL parsers disagree on the host), and no
  ``..``, ``%2e``, ``%5c``, ``\\`` or ``.`` segment, before or after decoding. The gateway used to accept
  ``https://*``, ``https://a:``, ``https://u@h`` and ``https://h/?q=..``: those now get a 400 that names
  the field, where QStash would accept a message it can never deliver.

The pattern is long because "decodes once to a URL" spelled as a regular expression is: it is built here,
from the same pieces as the checks, and ``test_the_spec_pattern_is_the_one_built_here`` keeps openapi.yaml in
step (``python tests/http/test_destination.py`` prints it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Client
from qstash_sim.errors import BadRequest
from qstash_sim.http.headers import parse_destination

ROOT = Path(__file__).resolve().parents[2]

HOST_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~-"
HEX = "0123456789ABCDEFabcdef"
DIGITS = "0123456789"
# After the authority, one character at a time: printable ASCII but "%" (only in an escape) and "\".
REST_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%\\")


def _class(chars: str) -> str:
    """A regex character class for ``chars``, ranges collapsed."""
    codes = sorted({ord(c) for c in chars})
    if len(codes) == 1:
        return re.escape(chr(codes[0]))

    def esc(c: str) -> str:
        return "\\" + c if c in "]\\^-[" else c

    out, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = esc(chr(codes[i])), esc(chr(codes[j]))
        out.append(lo if i == j else (lo + hi if j == i + 1 else f"{lo}-{hi}"))
        i = j + 1
    return "[" + "".join(out) + "]"


def _escapes(chars: str) -> str:
    """``%XX`` for each of ``chars`` (hex letters in either case), grouped by the first hex digit."""
    by_first: dict[str, str] = {}
    for c in sorted(set(chars), key=ord):
        hi, lo = f"{ord(c):02X}"
        by_first[hi] = by_first.get(hi, "") + (lo + lo.lower() if lo.isalpha() else lo)
    alts = [hi + _class(los) for hi, los in by_first.items()]
    return "%" + (alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")")


def _one(chars: str, encoded: bool) -> str:
    """One character of the URL out of ``chars``; in the encoded spelling raw or ``%XX`` (never ``%2e``)."""
    if not encoded:
        return _class(chars)
    escapable = chars.replace(".", "")
    return f"(?:{_class(chars)}|{_escapes(escapable)})" if escapable else _class(chars)


def _url(encoded: bool) -> str:
    """A URL, raw or (``encoded``) in any spelling that decodes once to one."""

    def c(chars: str) -> str:
        return _one(chars, encoded)

    scheme = c("Hh") + c("Tt") + c("Tt") + c("Pp") + c("Ss") + "?" + c(":") + c("/") + c("/")
    label = c(HOST_CHARS) + "+"
    name = f"{label}(?:\\.{label})*\\.?"  # "example.com." is a fully qualified name
    h16, col, d = c(HEX) + "{1,4}", c(":"), c(DIGITS)
    octet = f"(?:{c('2')}{c('5')}{c('012345')}|{c('2')}{c('01234')}{d}|{c('1')}{d}{d}|{c('123456789')}?{d})"
    ls32 = f"(?:{h16}{col}{h16}|{octet}(?:\\.{octet}){{3}})"
    hc = f"{h16}{col}"
    ipv6 = "|".join(  # RFC 3986's IPv6address
        [
            f"(?:{hc}){{6}}{ls32}",
            f"{col}{col}(?:{hc}){{5}}{ls32}",
            f"(?:{h16})?{col}{col}(?:{hc}){{4}}{ls32}",
            f"(?:(?:{hc}){{0,1}}{h16})?{col}{col}(?:{hc}){{3}}{ls32}",
            f"(?:(?:{hc}){{0,2}}{h16})?{col}{col}(?:{hc}){{2}}{ls32}",
            f"(?:(?:{hc}){{0,3}}{h16})?{col}{col}{hc}{ls32}",
            f"(?:(?:{hc}){{0,4}}{h16})?{col}{col}{ls32}",
            f"(?:(?:{hc}){{0,5}}{h16})?{col}{col}{h16}",
            f"(?:(?:{hc}){{0,6}}{h16})?{col}{col}",
        ]
    )
    host = f"(?:{name}|{c('[')}(?:{ipv6}){c(']')})"
    six, five = c("6"), c("5")
    port = (
        f"{col}(?:{d}{{1,4}}|{c('012345')}{d}{{4}}|{six}{c('01234')}{d}{{3}}|{six}{five}{c('01234')}{d}{{2}}"
        f"|{six}{five}{five}{c('012')}{d}|{six}{five}{five}{c('3')}{c('012345')})"
    )
    escape = f"%25{c(HEX)}{c(HEX)}" if encoded else "%[0-9A-Fa-f]{2}"
    # "{1,2}" changes nothing matched, but makes the lengths one step can take 1, 2 and 3 without a gap:
    # then a fuzzer can build a URL of exactly maxLength characters instead of searching for one.
    rest = f"{c('/?#')}(?:{c(REST_CHARS)}{{1,2}}|{escape})*"
    return f"{scheme}{host}(?:{port})?(?:{rest})?"


def build_pattern() -> str:
    """The ``pattern`` of ``components.schemas.Destination``."""
    nowhere = r"(?![\s\S]*(?:\.\.|%2[Ee]|%5[Cc]|\\))"  # in the text as sent (and so after decoding)
    raw_dot_segment = r"(?![\s\S]*/\.(?:[/?#]|$))"
    not_raw = r"(?![Hh][Tt][Tt][Pp][Ss]?://)"
    # after decoding: no "." segment, no "%2e" or "%5c" made of "%25" and two characters
    decoded_dot_segment = r"(?![\s\S]*(?:/|%2[Ff])\.(?:[/?#]|%2[Ff]|%3[Ff]|%23|$))"
    decoded_escape = r"(?![\s\S]*%25(?:(?:2|%32)(?:[Ee]|%[46]5)|(?:5|%35)(?:[Cc]|%[46]3)))"
    return f"^{nowhere}(?:{raw_dot_segment}{_url(False)}|{not_raw}{decoded_dot_segment}{decoded_escape}{_url(True)})$"


def _spec_pattern() -> str:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text("utf-8"))
    pattern: str = spec["components"]["schemas"]["Destination"]["pattern"]
    return pattern


# JSON Schema's "$" is the end of the string (ECMA 262); Python's also matches before a final "\n".
PATTERN = re.compile(_spec_pattern().removesuffix("$") + r"\Z")


def accepted(dest: str) -> bool:
    try:
        parse_destination(dest)
    except BadRequest:
        return False
    return True


def test_the_spec_pattern_is_the_one_built_here() -> None:
    assert _spec_pattern() == build_pattern(), "run: python tests/http/test_destination.py, paste into openapi.yaml"


QUICK = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
VALID = st.from_regex(PATTERN, fullmatch=True)


@QUICK
@given(VALID)
def test_every_destination_the_spec_admits_is_accepted(dest: str) -> None:
    url = parse_destination(dest)
    assert url == dest if re.match(r"(?i)https?://", dest) else url.lower().startswith(("http://", "https://"))


@QUICK
@given(VALID, st.integers(0, 10_000), st.text(alphabet="%/.:@[]\\ 25eEcCaAfF#?*", min_size=1, max_size=3))
def test_near_misses_are_refused_exactly_where_the_spec_refuses_them(dest: str, at: int, text: str) -> None:
    i = at % (len(dest) + 1)
    for changed in (dest[:i] + text + dest[i:], dest[:i] + dest[i + len(text) :], dest[:i] + text + dest[i + 1 :]):
        assert accepted(changed) == bool(PATTERN.search(changed)), changed


TOKENS = [
    *"hHtTpPsS:/%[]*.-_~?#@!$&'()+,;=0123456789aAfFeE\\ \x7f\u00e9",
    *("%3A", "%3a", "%2F", "%2f", "%5B", "%5D", "%25", "%2E", "%20", "%40", "%3F", "%23", "%32", "%65", "%35"),
    *("%63", "%41", "%7E", "%C3%A9", "%zz", "%0", "::", "ffff:", "1.2.3.4", "[::1]", ":8080", ":65536", "/."),
]
PREFIXES = ["https://", "HTTP://", "HTTps%3A%2f%2F", "http%3a%2F%2F", "https%3A//", "%68ttps%3A%2F%2F", "http://["]


@QUICK
@given(st.sampled_from(PREFIXES), st.lists(st.sampled_from(TOKENS), max_size=10))
def test_assorted_spellings_agree(prefix: str, tokens: list[str]) -> None:
    dest = prefix + "".join(tokens)
    assert accepted(dest) == bool(PATTERN.search(dest)), dest


@pytest.mark.parametrize(
    ("dest", "url"),
    [
        ("HTTps%3A%2f%2Fexample.com%2Fa%3Fb%3D1", "HTTps://example.com/a?b=1"),  # the finding's spelling
        ("https%3A//example.com/a", "https://example.com/a"),  # urllib.parse.quote(url)
        ("https%3A%2F%2F[::1]:8080/x", "https://[::1]:8080/x"),  # partly encoded
        ("https%3A%2F%2Fexample.com%2Fq%3Fs%3Da%2520b", "https://example.com/q?s=a%20b"),  # escapes kept, once
        ("http://[::ffff:127.0.0.1]:65535/", "http://[::ffff:127.0.0.1]:65535/"),
    ],
)
def test_any_spelling_that_decodes_once_to_a_url_is_that_url(dest: str, url: str) -> None:
    assert PATTERN.search(dest)
    assert parse_destination(dest) == url


@pytest.mark.parametrize(
    ("dest", "why"),
    [
        ("HTTps%3A%2f%2Fa*", "invalid host 'a*'"),
        ("https://*", "invalid host '*'"),
        ("https://example.com:", "bad port"),
        ("https://example.com:65536/", "bad port"),
        ("https://user:pw@example.com/", "credentials in the URL"),
        ("https://[::1%25eth0]/", "invalid [IPv6] address"),  # no zone id
        ("https://example.com/caf\u00e9", "only ASCII characters"),
        ("https://example.com/100%", "'%' must start a percent-escape"),
        ("https://example.com/?range=1..5", "path traversal"),
        ("https://example.com/a/./b", "path traversal"),
        ("https%3A%2F%2Fexample.com%2F.%2Fb", "path traversal"),  # a "." segment once decoded
        ("https%3A%2F%2Fexample.com%2F%252e%252e", "path traversal"),  # "%2e" once decoded
        ("https://example.com/x\n", "control characters"),  # "$" would let the final "\n" in
    ],
)
def test_what_the_spec_refuses_is_refused_with_a_reason(dest: str, why: str) -> None:
    assert not PATTERN.search(dest)
    with pytest.raises(BadRequest) as err:
        parse_destination(dest, "body /0/destination")
    assert why in err.value.message


def test_a_batch_item_outside_the_grammar_is_refused_naming_it(client: Client) -> None:
    """The finding: a batch item the spec's pattern refuses answered 200."""
    items = [{"destination": "https://example.com/ok"}, {"destination": "HTTps%3A%2f%2Fexample.com*"}]
    r = client.post("/v1/qstash/batch", json_body=items)
    assert r.status == 400
    assert r.error.startswith("body /1/destination: invalid destination url: invalid host 'example.com*'")
    ok = client.post("/v1/qstash/batch", json_body=[{"destination": "HTTps%3A%2f%2Fexample.com%2Fa"}])
    assert ok.status == 200 and ok.json[0]["url"] == "HTTps://example.com/a"


if __name__ == "__main__":
    sys.stdout.write(build_pattern() + "\n")
