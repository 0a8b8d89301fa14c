"""Tables keep their key columns whole at 80 columns; other columns wrap or are left out."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from bcpctl.tables import Markup, Table
from tests.conftest import Cli


def _render(table: Table, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, soft_wrap=True, highlight=False)  # as bcpctl.output sets it up
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_narrow_table_is_drawn_as_rich_draws_it() -> None:
    table = Table("id", "status")
    table.add_row("3f9a0c1d", "ok")
    assert "3f9a0c1d" in _render(table) and "left out" not in _render(table)


def test_a_full_snapshot_id_and_system_name_survive_80_columns() -> None:
    table = Table("id", "time", "system", "source", "files", "size")
    snapshot_id = "a" * 64
    table.add_row(snapshot_id, "2026-12-06 18:00 JST", "kasumigaura-juki", "path:/srv/" + "x" * 60, "12", "1.0 MiB")
    text = _render(table)
    assert snapshot_id in text and "kasumigaura-juki" in text
    assert "left out at this width" in text  # what did not fit is named, not silently cut


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=70), min_size=1, max_size=4),
    st.lists(st.text(alphabet="xyz ./", min_size=0, max_size=90), min_size=3, max_size=3),
    st.integers(min_value=40, max_value=160),
)
def test_key_cells_are_never_cut_at_any_width(ids: list[str], others: list[str], width: int) -> None:
    table = Table("run id", "system", "what", "where", "why")
    for run_id in ids:
        table.add_row(run_id, run_id[::-1], *others)
    lines = _render(table, width).splitlines()
    for run_id in ids:
        assert any(run_id in line for line in lines)
        assert any(run_id[::-1] in line for line in lines)


def test_no_command_draws_a_table_that_can_cut_an_id() -> None:
    """Every command's table comes from bcpctl.tables; rich's own shrinks the key columns too."""
    commands = Path(__file__).resolve().parents[2] / "bcpctl" / "commands"
    direct = [p.name for p in sorted(commands.glob("*.py")) if "rich.table" in p.read_text(encoding="utf-8")]
    assert direct == []


def test_snapshots_lists_a_source_path_with_brackets_and_escapes_as_written(cli: Cli, tmp_path: Path) -> None:
    """A directory named '[/x]' made every later ``snapshots`` an internal error (rich markup),
    '[old]' vanished from the listed path, and an escape sequence in it acted on the terminal."""
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    for name in ("[/x]", "[old]", "e\x1b[2J"):
        src = tmp_path / name  # '[/x]' is the directory 'x]' in '['
        src.mkdir(parents=True)
        (src / "f").write_text("x")
        assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "s").returncode == 0
    listed = cli("snapshots", "--repo", url, env={"COLUMNS": "300"})
    assert listed.returncode == 0, listed.stderr
    assert "[/x]" in listed.stdout and "[old]" in listed.stdout and "e\\x1b[2J" in listed.stdout
    assert "\x1b" not in listed.stdout


def test_a_cell_that_is_not_valid_markup_is_drawn_as_written_never_an_internal_error() -> None:
    """Commands draw some cells as rich markup (``Markup('[red]…[/]')``); one that quotes an
    error holding a stray closing tag must not turn the whole command into an internal error."""
    table = Table("host", "error")
    table.add_row("[/x]", Markup("cannot read /srv/[/share]/f"))
    table.add_row("h2", Markup("[red]down[/]"))
    out = _render(table)
    assert "[/x]" in out and "/srv/[/share]/f" in out and "down" in out and "[red]" not in out
