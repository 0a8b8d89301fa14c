"""Path patterns and snapshot paths: the one set of rules ``restore --include/--exclude``,
``ls``, ``find`` and ``dump`` share (docs/restore.md, "Patterns").

Snapshot paths are relative, ``/``-separated, without ``.``, ``..`` or empty components
(:func:`backup.restoreplan.check_entry_path` refuses any other). A pattern is matched
component by component against them:

- ``*`` any run of characters within one component, ``?`` one character, ``[abc]`` /
  ``[!abc]`` / ``[a-z]`` one of a set, ``\\x`` the character ``x`` itself;
- ``**`` as a whole component: zero or more components (``a/**/z``, ``**/*.sql``);
- a pattern without ``/`` matches a name at any depth (``*.sql``); one with ``/`` is
  anchored at the snapshot's root; a leading ``/`` anchors too and means the same root, never
  the host's file system (the paths restore writes stay beneath ``--target`` whatever matches);
- a pattern that matches a directory matches everything beneath it.

Refused (exit 2, one line), because each can only be a mistake that would silently match
nothing or everything: an empty pattern, NUL or another control character, an empty, ``.``
or ``..`` component, ``**`` inside a component, an unclosed ``[``, a trailing lone ``\\``.
Names that are not UTF-8 arrive surrogate-escaped (``os.fsdecode``) and match like any
other character; newlines in names are matched by ``*`` and ``?`` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from backup.kindnames import noun
from dc.errors import N_, UsageError

#: longest pattern or path accepted (PATH_MAX)
MAX_LENGTH = 4096


class BadPattern(UsageError):
    """A pattern or path that cannot mean what its user wants (exit 2)."""


def _refuse_controls(kind: str, text: str, *, controls: bool = True) -> None:
    """Refuse an empty or overlong text, and NUL (in no name); ``controls``: every other
    control character too (a pattern names them with ``?``, a path may hold them)."""
    if not text:
        raise BadPattern(N_("an empty {kind} matches nothing; give one"), kind=noun(kind))
    if len(text) > MAX_LENGTH:
        raise BadPattern(N_("a {kind} is at most {MAX_LENGTH} characters"), kind=noun(kind), MAX_LENGTH=MAX_LENGTH)
    if "\0" in text or (controls and any(ord(c) < 32 or ord(c) == 127 for c in text)):
        if controls:
            raise BadPattern(N_("{kind} {text!r} holds NUL or a control character"), kind=noun(kind), text=text)
        raise BadPattern(N_("{kind} {text!r} holds NUL"), kind=noun(kind), text=text)


def _components(kind: str, text: str) -> list[str]:
    parts = text.removeprefix("/").removesuffix("/").split("/") if text.strip("/") else []
    if not parts:
        return []
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPattern(
                N_(
                    "{kind} {text!r} has an empty, '.' or '..' component; snapshot paths never do (they are "
                    "relative to the snapshot's root)"
                ),
                kind=noun(kind),
                text=text,
            )
    return parts


def snapshot_path(text: str) -> str:
    """A path a user gave (``ls``, ``dump``, ``diff``) as a snapshot path; ``""`` is the root.

    A leading or trailing ``/`` is dropped: paths are relative to the snapshot's root. A
    name may hold any byte but NUL and ``/``, a newline included.
    """
    if text in ("", "/"):
        return ""
    _refuse_controls("path", text, controls=False)
    return "/".join(_components("path", text))


#: one unit of a component: a literal character, :data:`_ANY` (``?``), a compiled one-character
#: set (``[...]``) or :data:`_STAR` (``*``); of a pattern: a component's units, or :data:`_STAR` (``**``)
_STAR = object()
_ANY = object()


def _component_units(part: str, pattern: str) -> tuple[object, ...]:
    """One glob component as units (no ``/`` inside)."""
    out: list[object] = []
    i = 0
    while i < len(part):
        c = part[i]
        if c == "\\":
            if i + 1 == len(part):
                raise BadPattern(N_("pattern {pattern!r} ends with a lone '\\'"), pattern=pattern)
            out.append(part[i + 1])
            i += 2
            continue
        if c == "*":
            if part[i : i + 2] == "**":
                raise BadPattern(
                    N_("pattern {pattern!r}: '**' must be a whole path component (a/**/b)"), pattern=pattern
                )
            out.append(_STAR)
        elif c == "?":
            out.append(_ANY)
        elif c == "[":
            j = i + 1
            j += part[j : j + 1] == "!"
            j += part[j : j + 1] == "]"  # a ']' first in a set is a member
            end = part.find("]", j)
            if end < 0:
                raise BadPattern(N_("pattern {pattern!r} has an unclosed '['"), pattern=pattern)
            body = part[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            escaped = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[").replace("]", "\\]")
            try:
                out.append(re.compile(f"[{'^' if negate else ''}{escaped}]", re.DOTALL))
            except re.error as exc:  # a set such as [z-a]
                raise BadPattern(
                    N_("pattern {pattern!r} is not a valid glob ({msg})"), pattern=pattern, msg=exc.msg
                ) from None
            i = end + 1
            continue
        else:
            out.append(c)
        i += 1
    return tuple(out)


def _one_char(unit: object, c: str) -> bool:
    if unit is _ANY:
        return True
    if isinstance(unit, re.Pattern):
        return unit.fullmatch(c) is not None
    return unit == c


def _one_component(units: tuple[object, ...], name: str) -> bool:
    return _glob(units, name, _one_char)


def _glob(units: Sequence[object], items: Sequence[Any], one: Callable[[Any, Any], bool]) -> bool:
    """Whether ``units`` match all of ``items``, :data:`_STAR` standing for any run of them.

    The classic greedy wildcard walk: on a mismatch only the most recent star takes one item
    more, since the fixed-length run between two stars is best matched as early as possible.
    At most len(units) × len(items) steps whatever the pattern, where a backtracking regular
    expression takes exponential time on ``**/**/…/x`` or ``*a*a*…*b`` (a ``find`` or a
    ``restore --include`` that never ends).
    """
    u = i = 0
    star_u, star_i = -1, 0
    while i < len(items):
        if u < len(units) and units[u] is _STAR:
            star_u, star_i = u, i
            u += 1
        elif u < len(units) and one(units[u], items[i]):
            u += 1
            i += 1
        elif star_u >= 0:
            star_i += 1
            u, i = star_u + 1, star_i
        else:
            return False
    return all(unit is _STAR for unit in units[u:])


@dataclass(frozen=True)
class Pattern:
    """One compiled pattern (:func:`compile_pattern`)."""

    text: str
    #: per path component: its units, or :data:`_STAR` for ``**`` (an unanchored pattern starts with one)
    parts: tuple[object, ...]

    def matches(self, path: str) -> bool:
        """True when ``path`` or one of the directories above it matches."""
        return _glob((*self.parts, _STAR), _split(path), _one_component)

    def names(self, path: str) -> bool:
        """True when ``path`` itself matches (``find``: not merely beneath a match)."""
        return _glob(self.parts, _split(path), _one_component)


def _split(path: str) -> list[str]:
    return path.split("/") if path else []


def compile_pattern(text: str) -> Pattern:
    """The pattern ``text`` compiled, or :class:`BadPattern` saying what is wrong with it."""
    _refuse_controls("pattern", text)
    if not text.strip("/"):
        raise BadPattern(N_("pattern {text!r} names no path; use '**' for everything"), text=text)
    anchored = "/" in text.strip("/") or text.startswith("/")
    parts: list[object] = [] if anchored else [_STAR]
    for part in _components("pattern", text):
        unit = _STAR if part == "**" else _component_units(part, text)
        if not (unit is _STAR and parts and parts[-1] is _STAR):  # '**/**' means '**'
            parts.append(unit)
    return Pattern(text, tuple(parts))


class _Compiled:
    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [compile_pattern(p) for p in patterns]

    def any(self, path: str) -> bool:
        return any(p.matches(path) for p in self.patterns)


@dataclass
class Selection:
    """What ``--include`` / ``--exclude`` keep: an entry is kept when it (or a directory above
    it) matches an include — or no include is given — and neither it nor a directory above it
    matches an exclude. Excludes win."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._include = _Compiled(self.include)
        self._exclude = _Compiled(self.exclude)

    @property
    def everything(self) -> bool:
        return not self.include and not self.exclude

    def __call__(self, path: str) -> bool:
        if self._exclude.any(path):
            return False
        return not self.include or self._include.any(path)
