"""Hostile finding: ``failover lost --out DIR`` wrote its worklist with bare file operations, so
an ``--out`` that is a file, a directory it cannot write, or one where a directory (or anything
``unlink`` refuses) already sits at ``<system>-再入力.csv`` ended in "internal error" with a
traceback type instead of one line (exit 2), and nothing else in DIR was to be touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from dc.errors import UsageError
from failover.worklist import write_worklist

DOC = {"system": "goka-juki", "tenant_name": "五霞町", "rows": []}


def test_an_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a directory")
    with pytest.raises(UsageError, match="worklist") as refused:
        write_worklist(DOC, out)
    assert "\n" not in refused.value.message and out.read_text() == "not a directory"


def test_a_directory_where_the_csv_goes_is_one_line_and_stays(tmp_path: Path) -> None:
    planted = tmp_path / "goka-juki-再入力.csv"
    planted.mkdir()
    (planted / "keep").write_text("x")
    with pytest.raises(UsageError, match="worklist"):
        write_worklist(DOC, tmp_path)
    assert (planted / "keep").read_text() == "x"
