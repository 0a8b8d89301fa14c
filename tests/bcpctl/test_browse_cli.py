"""ls, find, dump, diff and restore --include through the real CLI: --json, exit codes, one-line errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backup.conftest import make_tree, tree_state
from tests.conftest import Cli

BIG = os.urandom(2 * 1024 * 1024 + 5)


@pytest.fixture
def repo(cli: Cli, tmp_path: Path) -> tuple[str, Path]:
    src = make_tree(tmp_path / "src", {"docs/a.txt": "alpha\n", "docs/b.sql": "select 1;\n", "big.bin": BIG})
    repo = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    done = cli("backup", "run", "--repo", repo, "--source", f"path:{src}", "--system", "files")
    assert done.returncode == 0, done.stderr
    return repo, src


def _json(cli: Cli, *args: str) -> object:
    result = cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_browse_command_speaks_json(cli: Cli, repo: tuple[str, Path], tmp_path: Path) -> None:
    url, src = repo
    listing = _json(cli, "ls", "latest", "--repo", url, "--recursive", "--long")
    assert {e["path"] for e in listing["entries"]} == {"big.bin", "docs", "docs/a.txt", "docs/b.sql"}  # type: ignore[index]
    found = _json(cli, "find", "*.sql", "--repo", url)
    assert [m["entry"]["path"] for m in found["matches"]] == ["docs/b.sql"]  # type: ignore[index]
    (src / "docs/a.txt").write_text("alpha, changed\n")
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files").returncode == 0
    snaps = _json(cli, "snapshots", "--repo", url)
    first, second = (s["id"] for s in snaps)  # type: ignore[union-attr]
    changed = _json(cli, "diff", first[:8], second[:8], "--repo", url)
    assert [(c["path"], c["what"]) for c in changed["changes"]] == [("docs/a.txt", ["content", "size"])]  # type: ignore[index]
    newest_first = _json(cli, "find", "a.txt", "--repo", url)
    assert [m["snapshot"] for m in newest_first["matches"]] == [second, first]  # type: ignore[index]
    one = _json(cli, "find", "a.txt", "--repo", url, "--newest", "1")
    assert [m["snapshot"] for m in one["matches"]] == [second]  # type: ignore[index]
    out = tmp_path / "dumped"
    dumped = _json(cli, "dump", first[:8], "docs/a.txt", "--repo", url, "--output", str(out))
    assert dumped["verified"] and out.read_bytes() == b"alpha\n"  # type: ignore[index]


def test_dump_is_byte_identical_to_the_file_restored_alone(cli: Cli, repo: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = repo
    dumped = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", "dump", "latest", "/big.bin", "--repo", url],
        capture_output=True,
        env=os.environ,
        timeout=120,
    )
    assert dumped.returncode == 0, dumped.stderr
    target = tmp_path / "one"
    restored = cli("restore", "latest", "--repo", url, "--target", str(target), "--include", "/big.bin")
    assert restored.returncode == 0, restored.stderr
    assert set(tree_state(target)) == {b"big.bin"}
    assert dumped.stdout == (target / "big.bin").read_bytes() == BIG


@pytest.mark.parametrize(
    "args",
    [
        ("find", "../*"),
        ("find", "/"),
        ("find", "a**"),
        ("find", "a\nb"),
        ("find", ""),
        ("find", "[abc"),
        ("ls", "latest", "../etc"),
        ("ls", "latest", "no/such/dir"),
        ("dump", "latest", "docs"),
        ("dump", "latest", "../../etc/passwd"),
        ("dump", "latest"),
        ("diff", "latest", "latest", "a/../b"),
        ("diff", "latest", "latest", "docs/typo"),
        ("restore", "latest", "--target", "T", "--include", "../x"),
        ("restore", "latest", "--target", "T", "--exclude", ""),
        ("restore", "latest", "--target", "T", "--include", "/"),
        ("restore", "latest", "--target", "T", "--include", "/docs/a.txtt"),
    ],
)
def test_hostile_patterns_and_paths_exit_2_with_one_line(
    cli: Cli, repo: tuple[str, Path], tmp_path: Path, args: tuple[str, ...]
) -> None:
    url, _ = repo
    args = tuple(str(tmp_path / "target") if a == "T" else a for a in args)
    result = cli(*args, "--repo", url)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("bcpctl: error: ") and result.stderr.count("\n") == 1
    assert "internal error" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "target").exists() or not any((tmp_path / "target").iterdir())


def test_dump_with_json_needs_an_output_file(cli: Cli, repo: tuple[str, Path]) -> None:
    result = cli("dump", "latest", "docs/a.txt", "--repo", repo[0], "--json")
    assert result.returncode == 2 and "--output" in result.stderr and result.stdout == ""


def test_restore_onto_the_source_path_needs_overwrite_and_says_so(cli: Cli, repo: tuple[str, Path]) -> None:
    url, src = repo
    before = tree_state(src)
    refused = cli("restore", "latest", "--repo", url, "--target", str(src))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--overwrite" in refused.stderr and "taken from" in refused.stderr
    assert tree_state(src) == before
    done = cli("restore", "latest", "--repo", url, "--target", str(src), "--overwrite", "if-changed")
    assert done.returncode == 0, done.stderr and tree_state(src) == before


def test_tables_keep_ids_and_system_names_whole_at_80_columns_when_piped(cli: Cli, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "a-rather-long-source-directory-name-for-the-table" / "src", {"f": "x"})
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    system = "kasumigaura-juki-system-with-a-long-name"
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", system).returncode == 0
    shown = cli("snapshots", "--repo", url, env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    assert system in shown.stdout
    found = cli("find", "f", "--repo", url, env={"COLUMNS": "80"})
    assert system in found.stdout


def test_ls_names_a_path_that_is_not_utf8_exactly(cli: Cli, tmp_path: Path) -> None:
    odd = os.fsdecode(b"caf\xe9")  # Latin-1, as an old Samba share stores it
    src = make_tree(tmp_path / "src", {f"{odd}/f.txt": "x", "plain/g.txt": "y"})
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files").returncode == 0
    listing = _json(cli, "ls", "latest", odd, "--repo", url)
    assert listing["path"] == "caf\\xe9" and listing["path_b64"] == base64.b64encode(b"caf\xe9").decode()  # type: ignore[index]
    assert [base64.b64decode(e["path_b64"]) for e in listing["entries"]] == [b"caf\xe9/f.txt"]  # type: ignore[index]
    plain = _json(cli, "ls", "latest", "plain", "--repo", url)
    assert plain["path"] == "plain" and plain["path_b64"] is None  # type: ignore[index]
    long = cli("ls", "latest", "--repo", url, "-R", "-l", env={"COLUMNS": "40"})
    lines = long.stdout.splitlines()
    assert lines[0].split() == ["mode", "owner", "size", "modified", "path"]
    assert [line.rsplit("  ", 1)[1] for line in lines[1:]] == ["caf\\xe9", "caf\\xe9/f.txt", "plain", "plain/g.txt"]


def test_json_keeps_names_and_link_targets_that_are_not_utf8_exact_in_diff_and_ls(cli: Cli, tmp_path: Path) -> None:
    r"""A name of the bytes ``\xff`` and one of the four characters ``\xff`` are two files: every
    --json that names them tells them apart, and gives back the exact bytes of each."""
    src = tmp_path / "src"
    src.mkdir()
    url = str(tmp_path / "repo")
    assert cli("repo", "init", "--repo", url).returncode == 0
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files").returncode == 0
    raw, text = b"n\xff", b"n\\xff"
    for name in (raw, text):
        (src / os.fsdecode(name)).write_bytes(name)
    os.symlink(b"/t\xfe", bytes(src / "link"))
    os.symlink(b"/t\\xfe", bytes(src / "link2"))
    assert cli("backup", "run", "--repo", url, "--source", f"path:{src}", "--system", "files").returncode == 0
    first, second = (s["id"] for s in _json(cli, "snapshots", "--repo", url))  # type: ignore[union-attr]

    def exact(item: dict[str, str], key: str) -> bytes:
        return base64.b64decode(item[f"{key}_b64"]) if item[f"{key}_b64"] else item[key].encode()

    changes = _json(cli, "diff", first, second, "--repo", url)["changes"]  # type: ignore[index]
    assert sorted(exact(c, "path") for c in changes) == sorted([raw, text, b"link", b"link2"])
    entries = _json(cli, "ls", "latest", "--repo", url)["entries"]  # type: ignore[index]
    targets = {exact(e, "path"): exact(e, "target") for e in entries if e["type"] == "symlink"}
    assert targets == {b"link": b"/t\xfe", b"link2": b"/t\\xfe"}


def test_dump_with_stdout_closed_or_cut_short_ends_in_one_line_or_silence(cli: Cli, repo: tuple[str, Path]) -> None:
    """``bcpctl dump … >&-`` (no stdout at all) names what to do; a reader that stops early
    (``| head -c1``) ends the dump quietly, exit 1 — never an internal error or a traceback."""
    url, _ = repo
    command = [sys.executable, "-m", "bcpctl.cli", "dump", "latest", "big.bin", "--repo", url]
    closed = subprocess.run(
        command,
        env=os.environ,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert closed.returncode == 2, closed.stderr
    assert closed.stderr.startswith("bcpctl: error: ") and closed.stderr.count("\n") == 1
    assert "--output" in closed.stderr and "internal error" not in closed.stderr
    reader = subprocess.Popen(command, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.read(1) == BIG[:1]
    reader.stdout.close()
    assert reader.wait(timeout=120) == 1
    assert reader.stderr.read() == b""


def test_restore_include_on_a_terminal_shows_the_selection_total(
    cli: Cli, repo: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = repo
    done = cli(
        "restore", "latest", "--repo", url, "--target", str(tmp_path / "t"), "--include", "/big.bin",
        env={"TTY_COMPATIBLE": "1", "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames = [f for f in done.stderr.replace("\r", "\n").splitlines() if "restoring" in f]
    # the last frame has the selection's size as its total (how far it got depends on the redraws)
    assert frames and "/2.1 MB" in frames[-1] and "/?" not in frames[-1], frames


def test_dump_to_a_file_whose_path_holds_brackets_reports_it_as_written(
    cli: Cli, repo: tuple[str, Path], tmp_path: Path
) -> None:
    """The closing line was rich markup: '--output .../[/d]' wrote and verified the file, then
    ended in an internal error, exit 1."""
    url, _ = repo
    (tmp_path / "[").mkdir()
    out = tmp_path / "[" / "d]"
    done = cli("dump", "latest", "docs/a.txt", "--repo", url, "--output", str(out), env={"COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and out.read_bytes() == b"alpha\n"


@pytest.mark.parametrize("command", ["ls", "dump"])
def test_a_missing_hostile_path_is_escaped_once_in_the_error(cli: Cli, repo: tuple[str, Path], command: str) -> None:
    """The name was escaped by ``shown`` and then again by ``!r``: ``'\\\\x1b'`` with two
    backslashes, not the name ls would show."""
    result = cli(command, "latest", "docs/e\x1b[2Jx", "--repo", repo[0])
    assert result.returncode == 2, result.stderr
    assert result.stderr == "bcpctl: error: snapshot " + result.stderr.split()[3] + " holds no 'docs/e\\x1b[2Jx'\n"
