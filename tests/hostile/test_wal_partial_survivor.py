"""Hostile finding: when a segment survived twice — ``X.partial`` in a promoted standby's
archive (what the standby had received when it switched timeline) and ``X`` in a copy of the
primary's ``pg_wal`` — the first in the configured order was taken and the other skipped as
"a second copy". A ``.partial`` listed first hid the primary's fuller copy, so transactions the
survivors hold were reported as unreadable instead of listed for re-entry. A whole-named copy
is taken before a ``.partial`` of the same segment, wherever each is."""

from __future__ import annotations

from pathlib import Path

from backup.walseq import segment_name
from backup.walsurvivors import vet_survivors
from tests.backup.test_walsurvivors import END_SEGNO, OURS, SIZE, _segment


def test_a_whole_segment_is_taken_before_a_partial_of_it(tmp_path: Path) -> None:
    standby, primary, spool = tmp_path / "standby", tmp_path / "pg_wal", tmp_path / "spool"
    for d in (standby, primary, spool):
        d.mkdir()
    name = segment_name(1, END_SEGNO + 1, SIZE)
    whole = _segment(END_SEGNO + 1, sysid=OURS.system_id, tli=1)
    (standby / f"{name}.partial").write_bytes(whole[:-1] + b"P")
    (primary / name).write_bytes(whole[:-1] + b"W")
    found = vet_survivors([standby, primary], spool, OURS, (END_SEGNO + 1) * SIZE)
    assert [p.name for p in found.usable] == [name]
    assert found.usable[0].read_bytes()[-1:] == b"W"
    assert [s.path for s in found.skipped] == [str(standby / f"{name}.partial")]
