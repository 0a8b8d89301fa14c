"""Option types that refuse a bad value while the command line is parsed: exit 2, one line.

A numeric or pattern option that takes any text or any number lets a typo run: ``forget
--keep-daily -5`` once removed every snapshot. Each numeric, duration and pattern option
therefore declares its range with one of these types (or click's ``IntRange``); nothing is
opened, read or changed before the value is known to make sense. tests/bcpctl/
test_option_fuzz.py walks every command and throws out-of-range and hostile values at each
such option, so a new option is covered the day it is added.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from bcpctl import i18n
from bcpctl.i18n import N_, _
from dc.duration import format_duration, parse_duration
from dc.errors import BcpError

#: ``--keep-*`` value meaning "keep all" (restic's ``unlimited``)
UNLIMITED = -1

DAY = 86400
OUTSIDE_COUNT = N_("{number} is outside 0..{maximum} (use 'unlimited' to keep all)")


def _clean(param_type: click.ParamType, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
    """Text without NUL or control characters, which no option here ever needs."""
    if any(not c.isprintable() for c in value):
        param_type.fail(_("contains control characters or NUL"), param, ctx)
    return value


class Count(click.ParamType):
    """How many snapshots a ``--keep-*`` rule keeps: ``N >= 0``, or ``unlimited`` for all.

    Negative numbers are refused rather than read as "unlimited": ``-5`` is a typo far more
    often than a wish, and restic refuses them for the same reason.
    """

    name = "count"

    def __init__(self, maximum: int = 1_000_000) -> None:
        self.maximum = maximum

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "N|unlimited"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = _clean(self, str(value), param, ctx).strip()
            if text.lower() == "unlimited":
                return UNLIMITED
            if not (text.isascii() and text.isdigit()):
                self.fail(
                    _("'{text}' is not a count: use a number from 0 to {maximum}, or 'unlimited'").format(
                        text=text, maximum=self.maximum
                    ),
                    param,
                    ctx,
                )
            if len(text) > len(str(self.maximum)):
                self.fail(_(OUTSIDE_COUNT).format(number=f"{text[:20]}…", maximum=self.maximum), param, ctx)
            number = int(text)
        if not 0 <= number <= self.maximum:
            self.fail(_(OUTSIDE_COUNT).format(number=number, maximum=self.maximum), param, ctx)
        return number


class FiniteFloat(click.FloatRange):
    """``FloatRange`` that also refuses NaN, which passes every range comparison by being false."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(_("{number} is not a finite number").format(number=number), param, ctx)
        return number


class Duration(click.ParamType):
    """A duration (``90s``, ``15m``, ``4h``, ``7d``, ``1h30m``, bare seconds) within bounds.

    ``as_text`` hands the command the text it was given (for commands that parse it
    themselves); otherwise whole seconds.
    """

    name = "duration"

    def __init__(self, minimum: int = 0, maximum: int = 3650 * DAY, *, as_text: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.as_text = as_text

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        else:
            text = _clean(self, str(value), param, ctx)
            try:
                seconds = parse_duration(text)
            except ValueError as exc:
                self.fail(i18n.shown(exc.args[0]) if exc.args else str(exc), param, ctx)
        if not self.minimum <= seconds <= self.maximum:
            low = format_duration(self.minimum)
            self.fail(
                _("'{value}' is outside {low}..{high}").format(
                    value=value, low=low, high=format_duration(self.maximum)
                ),
                param,
                ctx,
            )
        return str(value) if self.as_text else seconds


class Checked(click.ParamType):
    """Text the command parses itself, checked now by the same parser so a bad value stops at once.

    ``check`` is ``"module:function"`` (imported only when the option is given, so a command
    pays no import for options it was not given) or a callable; it raises a
    :class:`~dc.errors.BcpError` or ``ValueError`` for a bad value. The command gets the text.
    """

    def __init__(self, name: str, check: str | Callable[[str], object]) -> None:
        self.name = name
        self._check = check

    def _checker(self) -> Callable[[str], object]:
        if callable(self._check):
            return self._check
        module, _colon, function = self._check.partition(":")
        checker: Callable[[str], object] = getattr(importlib.import_module(module), function)
        return checker

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = _clean(self, str(value), param, ctx)
        try:
            self._checker()(text)
        except (BcpError, ValueError, OverflowError) as exc:
            shown = i18n.shown(exc if isinstance(exc, BcpError) or not exc.args else exc.args[0])
            self.fail(shown.splitlines()[0] if shown else _("invalid value"), param, ctx)
        return text


class PointInTime(click.ParamType):
    """An ISO 8601 time with its UTC offset: a time without one means a different instant to
    every reader (the storage's clock is UTC, the operator's JST)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = _clean(self, str(value), param, ctx).strip()
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                _("'{text}' is not an ISO 8601 time (e.g. 2026-06-01T03:00:00+09:00)").format(text=text), param, ctx
            )
        if when.tzinfo is None:
            self.fail(_("'{text}' needs a UTC offset (e.g. +09:00 or Z)").format(text=text), param, ctx)
        return when


class Pattern(click.ParamType):
    """A glob or host pattern: never empty (an empty exclude matches nothing, silently)."""

    name = "pattern"

    def __init__(self, max_length: int = 4096) -> None:
        self.max_length = max_length

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = _clean(self, str(value), param, ctx)
        if not text.strip():
            self.fail(_("a pattern cannot be empty"), param, ctx)
        if len(text) > self.max_length:
            self.fail(_("a pattern is at most {max_length} characters").format(max_length=self.max_length), param, ctx)
        return text


class SnapshotPattern(Pattern):
    """A pattern over snapshot paths (``restore --include``, ``find``): the rules of
    :mod:`backup.patterns`, checked while the command line is parsed."""

    name = "pattern"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        from backup.patterns import compile_pattern

        try:
            compile_pattern(text)
        except BcpError as exc:
            self.fail(i18n.error_message(exc), param, ctx)
        return text


def byte_rate(text: str) -> float:
    """``--limit-rate``: replication's own parser, and a rate a network can have (1 B/s .. 100 GB/s)."""
    from storage.ratelimit import parse_rate

    rate = parse_rate(text)
    if not 1 <= rate <= 100e9:
        raise ValueError(f"rate '{text}' is outside 1 B/s .. 100 GB/s")
    return rate
