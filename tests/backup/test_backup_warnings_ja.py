"""What a backup could not read reaches a Japanese operator in Japanese.

A reader (a forked process, through a pipe) names each file it could not read with a
:class:`~dc.errors.Message` and the OS's :class:`~dc.errors.Reason`; the CLI's result table
shows the first three in the operator's language, the English words as they always were.
"""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from backup.readers import read_file
from backup.repository import Repository
from backup.writer import BlobWriter
from bcpctl import i18n
from bcpctl.commands.backup import _render_results
from dc.errors import N_, OS_REASONS, Message, joined, os_reason
from tests.bcpctl.test_japanese_fragments import english_words


def _japanese(message: str) -> str:
    return i18n.error_message(message, "ja")  # type: ignore[arg-type]


def _read(repo: Repository, full: Path, size: int) -> str:
    _entry, error, _size = read_file(repo, BlobWriter(repo), str(full), {"path": "a/f", "size": size})
    assert error is not None
    return pickle.loads(pickle.dumps(error))  # as a forked reader hands it over


def test_what_a_reader_could_not_read_reads_japanese(repo: Repository, tmp_path: Path) -> None:
    """A file gone, a link or a FIFO in its place, a size that changed: the real reader's words."""
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/etc/hostname", tmp_path / "link")
    (tmp_path / "grown").write_bytes(b"x" * 10)
    errors = [
        _read(repo, tmp_path / "gone", 1),
        _read(repo, tmp_path / "link", 1),
        _read(repo, tmp_path / "fifo", 1),
        _read(repo, tmp_path / "grown", 5),
    ]
    assert errors == [
        "a/f: No such file or directory",
        f"a/f: {os.strerror(errno.ELOOP)}",
        "a/f: no longer a regular file",
        "a/f: changed size while being read (5 -> 10)",
    ]
    for error in errors:
        assert english_words(_japanese(error), "a/f") == [], _japanese(error)


_ERRORS = st.sampled_from(
    [
        lambda code: Message(N_("{path}: {reason}"), path="d/x", reason=os_reason(OSError(code, os.strerror(code)))),
        lambda _code: Message(
            N_("{path}: a file of unknown type (mode {mode}), not backed up"), path="d/x", mode="170644"
        ),
        lambda _code: Message(N_("{path}: not backed up: hard link to {link}, unread"), path="d/x", link="d/y"),
    ]
)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.lists(st.tuples(_ERRORS, st.sampled_from(sorted(OS_REASONS))), min_size=1, max_size=4))
def test_the_result_table_reads_japanese(made: list) -> None:  # type: ignore[type-arg]
    """The archiver's and the readers' lines as ``backup run`` shows the first three of them."""
    errors = [make(code) for make, code in made]
    row = {"system": "s1", "ok": False, "error": joined(errors[:3]), "result": {}}
    assert row["error"] == "; ".join(errors[:3])
    console = Console(record=True, width=400)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCPCTL_LANG", "ja")
        _render_results(console, {"backups": [row]})
    row_line = next(line for line in console.export_text().splitlines() if " s1 " in line)
    status = [cell for cell in row_line.split("│") if cell.strip()][-1]  # headers carry English beside by design
    assert "d/x" in status and english_words(status, "d/x", "d/y", "170644") == [], status
