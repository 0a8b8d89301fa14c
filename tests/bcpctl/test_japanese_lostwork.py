"""The lost-work list (``failover lost``) is Japanese: why each surviving WAL file was not used is
Japanese too, while ``--json`` keeps the English words (tests/backup/test_walsurvivors.py)."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

from backup.walseq import segment_name
from backup.walsurvivors import vet_survivors
from bcpctl.commands.failover import japanese_reasons
from failover.worklist import head_lines
from tests.backup.test_walsurvivors import END_SEGNO, OURS, SIZE, _segment
from tests.bcpctl.test_japanese_fragments import english_words


def test_every_reason_a_survivor_is_skipped_reads_japanese(tmp_path: Path) -> None:
    a, b, spool = tmp_path / "a", tmp_path / "b", tmp_path / "spool"
    for place in (a, b, spool):
        place.mkdir()

    def put(place: Path, segno: int, **kw: int) -> None:
        (place / segment_name(1, segno, SIZE)).write_bytes(_segment(segno, **{"sysid": OURS.system_id, "tli": 1, **kw}))

    put(a, END_SEGNO + 1)
    put(b, END_SEGNO + 1)  # a second copy
    put(a, END_SEGNO + 2, sysid=OURS.system_id + 1)  # another database system
    put(a, END_SEGNO + 3, tli=2)  # another timeline
    put(a, END_SEGNO + 4, size=SIZE // 3)  # truncated
    put(a, END_SEGNO + 6)  # after a hole
    (a / segment_name(1, END_SEGNO + 7, SIZE)).symlink_to(tmp_path / "elsewhere")  # unreadable: a link
    (a / segment_name(1, END_SEGNO + 8, SIZE)).mkdir()  # not a regular file
    found = vet_survivors([a, b, tmp_path / "absent"], spool, OURS, (END_SEGNO + 1) * SIZE)
    reasons = sorted(s.reason for s in found.skipped)
    assert f"unreadable: {os.strerror(errno.ENOENT)}" in reasons
    assert f"after a hole: {found.missing} survived nowhere" in reasons
    assert "a second copy of a segment already taken" in reasons and len(reasons) == 8, reasons
    doc = {"recovered_to": None, "skipped": [dataclasses.asdict(s) for s in found.skipped]}
    lines = head_lines(japanese_reasons(doc))[1:]
    assert len(lines) == 8
    for line in lines:
        assert english_words(line, *(s.path for s in found.skipped), str(found.missing)) == [], line
