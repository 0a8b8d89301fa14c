"""``--help`` laid out by display width: a full-width character (Japanese) takes two columns.

click pads the option column and wraps descriptions by counting characters, so under a Japanese
locale a translated metavar (``--since 時刻``) pushes its description two columns right per
character and a Japanese description runs past the terminal. :class:`CellFormatter` overrides
click's public :meth:`click.HelpFormatter.write_dl` (through :attr:`click.Context.formatter_class`)
and measures cells with :func:`unicodedata.east_asian_width` (``W`` and ``F`` are two columns,
as terminals draw them). A list whose every text is one column per character is left to click,
so the English help (and docs/commands.md, rendered from it) stays byte for byte what it was.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import click


def cells(text: str) -> int:
    """The columns ``text`` takes on a terminal (combining marks take none)."""
    return sum(_cell(ch) for ch in text)


def _cell(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns: at spaces, and anywhere inside a run of
    full-width characters (Japanese has no spaces between words)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            joined = f"{line} {word}" if line else word
            if cells(joined) <= width:
                line = joined
                continue
            if all(_cell(ch) == 1 for ch in word):
                if line:
                    lines.append(line)
                line = word
                continue
            line = f"{line} " if line else ""
            for ch in word:
                if line.strip() and cells(line + ch) > width:
                    lines.append(line.rstrip())
                    line = ""
                line += ch
        lines.append(line)
    return lines


class CellFormatter(click.HelpFormatter):
    """click's formatter, its definition lists (options, commands) aligned by display width."""

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        if all(cells(text) == len(text) for row in rows for text in row):
            super().write_dl(rows, col_max, col_spacing)
            return
        first_width = min(max((cells(first) for first, *_rest in rows), default=0), col_max)
        column = first_width + col_spacing
        for first, *rest in rows:
            second = rest[0] if rest else ""
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if cells(first) <= first_width:
                self.write(" " * (column - cells(first)))
            else:
                self.write("\n" + " " * (column + self.current_indent))
            lines = wrap(second, max(self.width - column - 2, 10))
            self.write(f"{lines[0]}\n")
            for line in lines[1:]:
                self.write(f"{'':>{column + self.current_indent}}{line}\n")


class CellContext(click.Context):
    """A context whose help uses :class:`CellFormatter` (click's documented extension point)."""

    formatter_class = CellFormatter
