"""A value an option refuses is refused in Japanese: click's number types and bcpctl's own.

click formats ``'x' is not a valid integer range.`` with the type's English name and its own
words; bcpctl's types (counts, durations, times, patterns) word their refusals themselves.
Every typed option of every command (the walk of docs/commands.md, so tomorrow's option too)
is given the hostile values of test_option_fuzz.py under ``BCPCTL_LANG=ja``: a refusal holds
no English word beyond the value itself and the words an operator types.
"""

from __future__ import annotations

import gettext

import click
import pytest

from bcpctl import i18n
from bcpctl.params import Count, Duration, Pattern, PointInTime
from tests.bcpctl.test_japanese_fragments import english_words
from tests.bcpctl.test_option_fuzz import NUMBERS, PATTERNS, _commands

TYPES = (click.types.IntParamType, click.types.FloatParamType, Count, Duration, Pattern, PointInTime)
#: what the operator types back as it is
TYPED = ("unlimited", "e.g.", "inf", "nan")


def _refusals() -> list[tuple[str, str, str, str]]:
    """(command, option, value, the refusal under ja) for every refused value."""
    found = []
    for name, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option) or not isinstance(param.type, TYPES):
                continue
            shown = i18n._localized_type(param.type)
            ctx = click.Context(command, info_name=name)
            for value in NUMBERS + PATTERNS + ["2026-06-01T03:00", "x"]:
                try:
                    shown.convert(value, param, ctx)
                except click.BadParameter as exc:
                    found.append((name, param.opts[0], value, exc.message))
    return found


def test_refused_values_read_japanese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    monkeypatch.setenv("LANGUAGE", "")
    previous = gettext.textdomain()
    try:
        i18n.setup()
        refusals = _refusals()
    finally:
        gettext.textdomain(previous)
    assert len({(c, o) for c, o, _v, _m in refusals}) > 40
    english = [
        f"{command} {option} {value[:20]!r}: {message[:200]}"
        for command, option, value, message in refusals
        if english_words(message, value, repr(value), value.strip(), *TYPED)
    ]
    assert not english, "\n".join(english[:20])


def test_the_help_names_number_types_in_japanese(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers INTEGER RANGE`` reads ``--workers 整数`` in Japanese; English keeps click's name."""
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    for name, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(param.type, TYPES[:2]):
                shown = i18n._localized_type(param.type)
                assert shown is not param.type and english_words(shown.name) == [], (name, param.opts, shown.name)
    monkeypatch.setenv("BCPCTL_LANG", "en")
    assert i18n._localized_type(click.IntRange(1, 2)).name == "integer range"
