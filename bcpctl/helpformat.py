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


#: closing punctuation that never starts a line: it hangs past the margin instead (ぶら下げ, JIS X 4051)
_HANGING = frozenset("、。，．）」』】〉》！？")


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns: at spaces, and between two full-width
    characters (Japanese has no spaces between words); a run of narrow characters (a URL, an
    option) is never cut, as click's own wrapping does not cut a word."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            for n, token in enumerate(_tokens(word)):
                joined = line + (" " if line and n == 0 else "") + token
                if cells(joined) <= width or not line.strip() or (n and token in _HANGING):
                    line = joined
                else:
                    lines.append(line.rstrip())
                    line = token
        lines.append(line)
    return lines


def _tokens(word: str) -> list[str]:
    """A word's unbreakable pieces: each full-width character alone, each run of narrow ones."""
    tokens: list[str] = []
    run = ""
    for ch in word:
        if _cell(ch) == 2:
            tokens += [run, ch] if run else [ch]
            run = ""
        else:
            run += ch
    return [*tokens, run] if run or not tokens else tokens


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

    def write_text(self, text: str) -> None:
        if cells(text) == len(text):
            super().write_text(text)
            return
        indent = " " * self.current_indent
        width = max(self.width - self.current_indent, 11)
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if paragraph.startswith("\b"):  # click's mark: lines kept as they are
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()[1:]))
                continue
            joined = " ".join(line.strip() for line in paragraph.splitlines())
            paragraphs.append("\n".join(indent + line for line in wrap(joined, width)))
        self.write("\n\n".join(paragraphs) + "\n")


class CellContext(click.Context):
    """A context whose help uses :class:`CellFormatter` (click's documented extension point)."""

    formatter_class = CellFormatter
