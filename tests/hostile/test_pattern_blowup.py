"""Hostile finding: a pattern given to ``find``, ``ls`` or ``restore --include/--exclude`` could
take exponential time (``**/**/…/x``, ``*a*a*…*b``): the patterns were backtracking regular
expressions, so one careless or hostile pattern hung ``find`` — and a restore selection — for
ever, at 100 % of a core. Matching must stay proportional to pattern × path length.

The match runs in a child process with a deadline: a backtracking matcher holds the GIL inside
the regular-expression engine, where no in-process timeout can interrupt it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.patterns import Selection, compile_pattern

BLOWUPS = [
    ("/".join(["**"] * 14) + "/x", "/".join(["a"] * 30)),
    ("*a*a*a*a*a*a*a*a*a*a*b", "a" * 60),
    ("**/" + "/".join(["*a*a*a*a*b"] * 4), "/".join(["a" * 40] * 8)),
    ("x/" + "/".join(["**", "*a*a*a*b"] * 6), "x/" + "/".join(["a" * 30] * 12)),
]


@pytest.mark.parametrize(("pattern", "path"), BLOWUPS)
def test_hostile_patterns_match_in_bounded_time(pattern: str, path: str) -> None:
    code = (
        "import sys\n"
        "from backup.patterns import Selection, compile_pattern\n"
        "p = compile_pattern(sys.argv[1])\n"
        "print(p.matches(sys.argv[2]), p.names(sys.argv[2]), Selection([sys.argv[1]])(sys.argv[2]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, pattern, path], capture_output=True, text=True, timeout=10, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"matching {pattern!r} against {path!r} did not finish in 10 s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]


NAMES = st.text(alphabet="ab*?", min_size=1, max_size=6).filter(lambda s: "**" not in s)


def _reference(parts: list[str], components: list[str]) -> bool:
    """``**`` any number of whole components, the rest fnmatch on one component each."""
    if not parts:
        return not components
    if parts[0] == "**":
        return any(_reference(parts[1:], components[k:]) for k in range(len(components) + 1))
    return bool(components) and fnmatchcase(components[0], parts[0]) and _reference(parts[1:], components[1:])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.lists(st.one_of(st.just("**"), NAMES), min_size=1, max_size=5),
    st.lists(st.text(alphabet="ab", min_size=1, max_size=5), min_size=0, max_size=5),
)
def test_pattern_agrees_with_a_reference_matcher(parts: list[str], components: list[str]) -> None:
    """Anchored patterns against an independent (slow, recursive) reference."""
    pattern = compile_pattern("/" + "/".join(parts))
    path = "/".join(components)
    assert pattern.names(path) is _reference(parts, components)
    beneath = any(_reference(parts, components[:k]) for k in range(len(components) + 1))
    assert pattern.matches(path) is beneath
    assert Selection(["/" + "/".join(parts)])(path) is beneath


def test_matches_means_names_with_everything_beneath() -> None:
    for text in ("a/*/c", "**/x?", "/d", "/**/*.sql", "a/**"):
        for path in ("a/b/c", "a/b/c/d/e", "q/xy/z", "d/e", "s/t.sql/u", "a"):
            assert compile_pattern(text).matches(path) is compile_pattern(text.rstrip("/") + "/**").names(path)
