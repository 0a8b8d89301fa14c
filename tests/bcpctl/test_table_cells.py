"""A table's cells are data: a name holding rich markup (``[red]x``, ``[/]``, ``[bold]``) is
shown as written in every command's table, never read as a style; only what the code itself
colours (:class:`bcpctl.tables.Markup`, ``markup``, ``styled``) is."""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from bcpctl.tables import Markup, Table, lines, markup, styled
from dc.plaintext import one_line
from tests.backup.conftest import make_tree
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ("[red]x", "[/]", "[bold]", "[old]", "a[/x]b", ":smile:")
#: a rich style tag the code writes on purpose
STYLE_TAG = re.compile(r"\[/?(?:red|green|yellow|bold|dim|blue|cyan|magenta|italic)\b[^\]]*\]|\[/\]")


def _render(table: Table, width: int = 300, *, colour: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, soft_wrap=True, highlight=False, force_terminal=colour)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


@settings(max_examples=80, derandomize=True, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(HOSTILE), st.text(alphabet="[]/ab:\\\x1b\n\u202e #", min_size=1, max_size=12)),
        min_size=4,
        max_size=4,
    )
)
def test_every_str_cell_header_and_title_is_drawn_as_written(texts: list[str]) -> None:
    system, path, header, title = texts
    table = Table("system", header or "h", "path", title=title)
    table.add_row(system, "1", path)
    out = _render(table)
    for text in (system, path, header or "h", title):
        assert one_line(text) in out, (text, out)
    assert "\x1b" not in out and "\u202e" not in out


def test_what_the_code_colours_is_coloured_and_the_data_in_it_is_not() -> None:
    table = Table("system", "status", "why")
    table.add_row(
        "[red]x", markup("[red]FAILED[/red] {error}", error="[bold]disk[/]"), lines("a", Markup("[green]ok[/]"))
    )
    table.add_row("s", Markup("[green]ok[/green]"), styled("[/] down", style="red"))
    out = _render(table, colour=True)
    assert "\x1b[31mFAILED" in out and "[bold]disk[/]" in out and "\x1b[32mok" in out
    assert "\x1b[31m[/] down" in out and "[red]x" in out


def _table_users() -> list[Path]:
    """Every module under bcpctl/ that draws a :class:`bcpctl.tables.Table`."""
    return sorted(
        p for p in (ROOT / "bcpctl").rglob("*.py") if p.name != "tables.py" and re.search(r"\bTable\(", p.read_text())
    )


def _coloured_on_purpose(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("Markup", "markup", "print", "status", "log", "rule"):
                return True
    return False


def test_every_style_tag_a_table_user_writes_is_marked_as_markup() -> None:
    """A cell the code colours with a plain ``str`` would now show ``[red]`` as text: every
    literal style tag in a module that draws tables is inside ``Markup``/``markup`` (or goes
    to ``console.print``, which reads markup and whose data is escaped where it is built)."""
    users = _table_users()
    assert len(users) >= 20, users  # the grep finds the commands, not nothing
    unmarked = []
    for path in users:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if STYLE_TAG.search(text) and not _coloured_on_purpose(node, parents):
                unmarked.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}: {text!r}")
    assert unmarked == []


@pytest.fixture
def hostile_repo(cli: Cli, tmp_path: Path) -> str:
    """A repository whose snapshots carry markup in their source paths (a system name with a
    bracket is refused) and a key slot labelled with it; ``backup run``'s own table names
    each source as written."""
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    for i, name in enumerate(HOSTILE[:3]):
        src = make_tree(tmp_path / f"src{i}" / name, {"f": str(i)})  # '[/]' is the directory ']' in '['
        done = cli("backup", "run", "--repo", url, "--source", f"path:{src}", env={"COLUMNS": "400"})
        assert done.returncode == 0, done.stderr
        assert str(src) in done.stdout, done.stdout
    added = cli("key", "add", "--repo", url, "--label", LABEL, env={"BCPCTL_NEW_PASSWORD": "another-pass"})
    assert added.returncode == 0, added.stderr
    return url


LABEL = "[red]x [/] [bold]y"


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("snapshots",), "sources"),
        (("forget", "--keep-last", "1", "--dry-run"), "sources"),
        (("key", "list"), "label"),
    ],
)
def test_command_tables_show_markup_in_names_as_written(
    cli: Cli, hostile_repo: str, args: tuple[str, ...], shown: str
) -> None:
    done = cli(*args, "--repo", hostile_repo, env={"COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    snapshots = json.loads(cli("snapshots", "--repo", hostile_repo, "--json").stdout)
    expected = [s["source"].removeprefix("path:") for s in snapshots] if shown == "sources" else [LABEL]
    assert len(expected) == (3 if shown == "sources" else 1)
    for text in expected:
        assert text in done.stdout, (text, done.stdout)


def test_a_host_in_maintenance_and_its_reason_are_listed_as_written(cli: Cli) -> None:
    host = "[bold]hv01[/]"
    done = cli("dc", "maintenance", host, "on", "--reason", LABEL, env={"COLUMNS": "400"})
    assert done.returncode == 0, done.stderr
    assert host in done.stdout and LABEL in done.stdout, done.stdout
