"""The pattern rules shared by restore --include/--exclude, ls, find and dump (docs/restore.md)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.patterns import BadPattern, Selection, compile_pattern, snapshot_path

CASES = [
    # pattern, path, matches (the path itself or beneath), names (the path itself)
    ("*.sql", "dump.sql", True, True),
    ("*.sql", "a/b/dump.sql", True, True),
    ("*.sql", "dump.sqlx", False, False),
    ("*.sql", "a.sql/inner", True, False),  # beneath a match
    ("docs", "docs/x/y", True, False),
    ("docs", "a/docs", True, True),  # no '/': a name at any depth
    ("/docs", "a/docs", False, False),  # leading '/': the snapshot's root
    ("/docs", "docs", True, True),
    ("a/b", "x/a/b", False, False),  # a '/' anchors
    ("a/*/c", "a/b/c", True, True),
    ("a/*/c", "a/b/x/c", False, False),  # '*' never crosses '/'
    ("a/**/c", "a/c", True, True),
    ("a/**/c", "a/b/x/c", True, True),
    ("**", "anything/at/all", True, True),
    ("**/*.csv", "x/y.csv", True, True),
    ("x?z", "x/z", False, False),  # '?' never matches '/'
    ("x[!a]z", "x/z", False, False),  # nor does a negated set
    ("x[!a]z", "xbz", True, True),
    ("[]a]", "]", True, True),
    (r"\*", "*", True, True),
    (r"\*", "a", False, False),
    ("*", "bad\udcffname", True, True),  # a name that is not UTF-8
    ("we?rd", "we\nrd", True, True),  # a newline in a name
]


@pytest.mark.parametrize(("pattern", "path", "matches", "names"), CASES)
def test_pattern_rules(pattern: str, path: str, matches: bool, names: bool) -> None:
    compiled = compile_pattern(pattern)
    assert compiled.matches(path) is matches
    assert compiled.names(path) is names


HOSTILE = [
    "",
    "/",
    "//",
    "../x",
    "a/../b",
    "..",
    ".",
    "./a",
    "a//b",
    "a**",
    "**b",
    "[abc",
    "x\\",
    "a\x00b",
    "a\nb",
    "\x1b[2J",
    "[z-a]",
    "x" * 5000,
]


@pytest.mark.parametrize("pattern", HOSTILE)
def test_hostile_patterns_are_refused_with_exit_2(pattern: str) -> None:
    with pytest.raises(BadPattern) as refused:
        compile_pattern(pattern)
    assert refused.value.exit_code == 2 and "\n" not in refused.value.message


@pytest.mark.parametrize("path", ["../etc", "a/../../b", "a\x00", "a//b", "./x", "x" * 5000])
def test_hostile_paths_are_refused(path: str) -> None:
    with pytest.raises(BadPattern):
        snapshot_path(path)


def test_paths_are_relative_to_the_snapshot_root() -> None:
    assert snapshot_path("/etc/passwd") == "etc/passwd"
    assert snapshot_path("docs/") == "docs"
    assert snapshot_path("/") == snapshot_path("") == ""


def test_excludes_win_and_no_include_keeps_everything() -> None:
    keep = Selection(include=["docs"], exclude=["*.tmp", "docs/private"])
    assert keep("docs/a.txt") and not keep("docs/a.tmp") and not keep("docs/private/x") and not keep("other")
    assert Selection(exclude=["*.tmp"])("anything") and Selection().everything


def _escaped(name: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in name)


# names as os.fsdecode gives them: any bytes but NUL and '/', so glob characters, newlines
# and undecodable bytes (surrogate-escaped) included
NAMES = st.binary(min_size=1, max_size=12).filter(lambda b: b"\0" not in b and b"/" not in b and b not in (b".", b".."))
PATHS = st.lists(NAMES.map(os.fsdecode), min_size=1, max_size=4).map("/".join)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(PATHS, PATHS)
def test_a_literal_pattern_names_its_path_and_what_is_beneath_only(path: str, other: str) -> None:
    """Every path, whatever its bytes, can be named exactly: control characters by '?',
    everything else by itself (glob characters escaped)."""
    literal = "/" + "".join("?" if ord(c) < 32 or ord(c) == 127 else _escaped(c) for c in path)
    compiled = compile_pattern(literal)
    assert compiled.names(path) and compiled.matches(path + "/child")
    assert compile_pattern("**").names(path) and compile_pattern("*").matches(path)
    if compiled.names(other):
        # only where '?' stood for a control character may another path be named
        assert len(other) == len(path) and all(
            a == b or ord(a) < 32 or ord(a) == 127 for a, b in zip(path, other, strict=True)
        )
    parts = other.split("/")
    ancestors = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    assert compiled.matches(other) == any(compiled.names(a) for a in ancestors)
