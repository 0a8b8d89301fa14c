"""Tables for people that never cut what identifies a row.

rich shrinks every column alike when a table is wider than the terminal (80 columns when
piped), so a snapshot id, run id or system name came out as ``3f9a…``: the one thing the
operator copies into the next command. Here the *key* columns (:data:`KEY_HEADERS`, or the
``keys`` a command names) keep their full width; the other columns wrap, and when even
wrapped they do not fit, the rightmost of them are left out and a last line names them
(``--json`` always has everything). If the key columns alone are wider than the terminal,
the table is drawn wider and the terminal wraps the lines: still nothing is cut.

Every ``str`` cell, header and title is data, drawn as written: rich reads a string as
markup, so a system, path or tag named ``[red]x`` restyled the line and ``[old]`` vanished.
What the code itself colours says so: :class:`Markup`, :func:`markup`, :func:`styled`.

:class:`Table` takes the constructor and ``add_row`` calls of ``rich.table.Table`` that the
commands use, and renders through rich's public renderable protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bcpctl.i18n import _
from dc.plaintext import one_line

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.text import Text

#: header words of the columns that identify a row (a header matches when one of its
#: " / "-separated parts, lower-cased, is one of these)
KEY_HEADERS = frozenset(
    {"id", "snapshot", "system", "run", "run id", "host", "request", "tenant", "slot", "name", "path", "partner"}
)
#: a column that wraps keeps at least this many cells, or it is left out
MIN_WIDTH = 6


class Markup(str):
    """A cell the code itself styles with rich markup (``Markup("[red]FAILED[/]")``): the one
    kind of string cell read as markup. Every other ``str`` cell is data (a system, a path, a
    tag, a partner's name) and is drawn as written, so ``[red]x`` or ``[bold]`` in a name
    neither restyles the line nor vanishes. Data put inside a markup cell must go through
    ``rich.markup.escape`` (and :func:`dc.plaintext.one_line`); joining a ``Markup`` with a
    plain ``str`` gives a plain ``str``, drawn as written: the safe side."""

    __slots__ = ()


def plain(text: str) -> Text:
    """A cell of data drawn as written: a name or path holding ``[/x]`` or ``[old]`` is text,
    and what a terminal would obey is escaped (:func:`dc.plaintext.one_line`)."""
    from rich.text import Text

    return Text(one_line(text))


def styled(text: str, *, style: str) -> Text:
    """A cell of data in a colour the code chose (an error in red): the text drawn as written."""
    drawn = plain(text)
    drawn.stylize(style)
    return drawn


def markup(template: str, **params: object) -> Markup:
    """A :class:`Markup` cell from a template the code wrote (``_("[red]FAILED[/red] {error}")``)
    whose parameters are data: each is escaped, so it is shown as written, on one line."""
    from rich.markup import escape

    return Markup(template.format(**{k: escape(one_line(str(v))) for k, v in params.items()}))


def lines(*parts: str) -> Text:
    """A cell of several lines the code chose (a time, then its age below): each part is one
    line, drawn as :func:`cell` draws it, so a line break inside a name stays escaped."""
    from rich.text import Text

    return Text("\n").join(_text(part) for part in parts)


def _text(part: str) -> Text:
    drawable = cell(part)
    if isinstance(drawable, str):  # valid markup the code wrote
        from rich.text import Text

        return Text.from_markup(drawable)
    return drawable


def cell(value: Any) -> Any:
    """What a table draws for ``value``: a ``str`` as written (:func:`plain`), a :class:`Markup`
    as the markup it is, unless it is not valid markup (an error quoted unescaped holding
    ``[/x]``), then as written instead of failing the whole command; any other renderable
    (a ``rich.text.Text`` the code styled) as it is."""
    if not isinstance(value, str):
        return value
    if not isinstance(value, Markup):
        return plain(value)
    if "[" not in value:
        return str(value)
    from rich.errors import MarkupError
    from rich.markup import render

    try:
        render(value)
    except MarkupError:
        return plain(value)
    return str(value)


def is_key(header: str) -> bool:
    """Whether ``header`` names a key column, in English or as the catalog translates it
    (a Japanese operator's ``システム`` column is as whole as ``system``)."""
    keys = KEY_HEADERS | {_(k).lower() for k in KEY_HEADERS}
    return any(part.strip().lower() in keys for part in header.split(" / "))


class Table:
    """A table whose key columns are printed whole at any width."""

    def __init__(self, *headers: str, title: str | None = None, keys: Iterable[str] | None = None) -> None:
        self.headers = list(headers)
        self.title = title
        self.keys = {h for h in headers if is_key(h)} if keys is None else set(keys)
        self.rows: list[tuple[Any, ...]] = []
        self.row_styles: list[str | None] = []

    def add_row(self, *cells: Any, style: str | None = None) -> None:
        """A row; ``str`` cells are data, drawn as written (see :func:`cell`)."""
        self.rows.append(tuple(cell(value) for value in cells))
        self.row_styles.append(style)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.measure import Measurement
        from rich.table import Table as RichTable

        def width(drawn: Any, *, least: bool = False) -> int:
            renderable = console.render_str(drawn) if isinstance(drawn, str) else drawn
            measured = Measurement.get(console, options.update_width(10_000), renderable)
            return measured.minimum if least else measured.maximum

        n = len(self.headers)
        # headers and the title are data too where a command takes them from its rows
        # (a registry's or a lookup's own column names, a playbook's name)
        headers = [cell(h) for h in self.headers]
        natural = [max([width(headers[i])] + [width(row[i]) for row in self.rows if i < len(row)]) for i in range(n)]
        keys = [i for i, h in enumerate(self.headers) if h in self.keys]
        others = [i for i in range(n) if i not in keys]
        limit = options.max_width
        title = None
        if self.title is not None:  # rich styles a str title only; the data in it is drawn as written
            title = plain(self.title)
            title.style = "table.title"
        table = RichTable(title=title)
        if sum(natural) + 3 * n + 1 <= limit:  # padding either side of a cell, and n + 1 borders
            for i in range(n):
                table.add_column(headers[i], no_wrap=i in keys)
            for row, style in zip(self.rows, self.row_styles, strict=True):
                table.add_row(*row, style=style)
            yield table
            return
        dropped: list[int] = []
        while True:
            wrapping = [i for i in others if i not in dropped]
            room = limit - (3 * (len(keys) + len(wrapping)) + 1) - sum(natural[i] for i in keys)
            if room >= sum(min(natural[i], MIN_WIDTH) for i in wrapping) or not wrapping:
                break
            dropped.append(wrapping[-1])
        widths = _share(natural, keys, wrapping, room)
        shown = [i for i in range(n) if i not in dropped]
        for i in shown:
            table.add_column(headers[i], width=widths[i], no_wrap=i in keys, overflow="fold")
        for row, style in zip(self.rows, self.row_styles, strict=True):
            table.add_row(*(row[i] if i < len(row) else "" for i in shown), style=style)
        needed = sum(widths[i] for i in shown) + 3 * len(shown) + 1
        yield from console.render(table, options.update_width(max(limit, needed)))
        if dropped:
            names = ", ".join(self.headers[i] for i in dropped)
            yield console.render_str(
                _("(left out at this width: {names}; --json has every column)").format(names=names), markup=False
            )


def _share(natural: list[int], keys: list[int], wrapping: list[int], room: int) -> dict[int, int]:
    """Widths: key columns whole; the wrapping ones under one cap, the highest that fits
    ``room`` (the widest columns wrap first; none below :data:`MIN_WIDTH` or its natural width)."""
    widths = {i: natural[i] for i in keys}

    def capped(cap: int) -> dict[int, int]:
        return {i: min(natural[i], max(cap, MIN_WIDTH)) for i in wrapping}

    cap = max((natural[i] for i in wrapping), default=0)
    while cap > MIN_WIDTH and sum(capped(cap).values()) > room:
        cap -= 1
    return widths | capped(cap)


class Rows:
    """Rows written as they come, for listings too long to gather into a :class:`Table`.

    A :class:`Table` measures every row before drawing the first, so ``find '*'`` over
    millions of files held them all and took minutes. Here each column but the last has a
    width fixed up front (a longer cell pushes its row right, never cut); the last column —
    the path, the one thing copied from a listing — is written whole, and the terminal wraps
    it. Lines go straight to the console's file: rich's per-line rendering costs ~0.2 ms, an
    hour for a file server's listing. Cells must already be one line of printable text.
    """

    def __init__(self, console: Console, columns: Sequence[tuple[str, int]], *, right: Iterable[str] = ()) -> None:
        self.file = console.file
        self.columns = list(columns)
        self.right = set(right)

    def header(self) -> None:
        self.add(*(name for name, _width in self.columns))

    def add(self, *cells: str) -> None:
        from rich.cells import cell_len

        parts = []
        for (name, width), cell in zip(self.columns[:-1], cells, strict=False):
            pad = " " * max(width - cell_len(cell), 0)
            parts.append(pad + cell if name in self.right else cell + pad)
        self.file.write("  ".join([*parts, cells[-1]]).rstrip() + "\n")
