"""Surviving WAL is untrusted: any set of files, of any cluster, size, timeline or link, gives a
contiguous run that continues the archive, and every other file is named — never an exception."""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.waldump import parse_stretch
from backup.walseq import parse_lsn, segment_name
from backup.walsurvivors import Cluster, vet_survivors

SIZE = 1 << 20  # a valid wal_segment_size that keeps generated sets small
OURS = Cluster(system_id=7432100000000000001, timeline=1, segment_size=SIZE)
END_SEGNO = 40  # the offsite's replay ended inside this segment


def _segment(segno: int, *, sysid: int, tli: int, pageaddr: int | None = None, size: int = SIZE) -> bytes:
    address = segno * SIZE if pageaddr is None else pageaddr
    header = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, tli, address, 0, sysid, SIZE, 8192)
    return (header + b"\0" * (SIZE - len(header)))[:size]


KINDS = st.sampled_from(["good", "good", "good", "foreign", "timeline", "truncated", "recycled", "link", "dir"])
FILES = st.lists(st.tuples(st.integers(END_SEGNO - 2, END_SEGNO + 6), KINDS, st.booleans()), max_size=10)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(files=FILES)
def test_survivors_continue_the_archive_or_are_named(files: list[tuple[int, str, bool]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        places = [root / "a", root / "b"]
        for place in places:
            place.mkdir()
        (root / "spool").mkdir()
        written: dict[Path, tuple[int, str]] = {}
        for segno, kind, second in files:
            path = places[second] / segment_name(1, segno, SIZE)
            if path.exists() or path.is_symlink():
                continue
            if kind == "link":
                path.symlink_to(root / "elsewhere")
            elif kind == "dir":
                path.mkdir()
            else:
                path.write_bytes(
                    _segment(
                        segno,
                        sysid=OURS.system_id + (kind == "foreign"),
                        tli=2 if kind == "timeline" else 1,
                        pageaddr=(segno + 9) * SIZE if kind == "recycled" else None,
                        size=SIZE // 3 if kind == "truncated" else SIZE,
                    )
                )
            written[path] = (segno, kind)
        found = vet_survivors(places, root / "spool", OURS, END_SEGNO * SIZE + 4096)
        used = [int(p.name[16:24], 16) for p in found.usable]
        # one unbroken run that starts where the archive ends (its end segment, or the next)
        assert used == list(range(used[0], used[0] + len(used))) if used else True
        assert not used or used[0] in (END_SEGNO, END_SEGNO + 1)
        good = {segno for segno, kind in written.values() if kind == "good"}
        start = END_SEGNO if END_SEGNO in good else END_SEGNO + 1
        expected = []
        while start in good:
            expected.append(start)
            start += 1
        assert used == expected
        assert sorted(p.name for p in (root / "spool").iterdir()) == sorted(p.name for p in found.usable)
        named = {s.path for s in found.skipped}
        for path, (segno, kind) in written.items():
            if kind != "good":
                assert str(path) in named, (path, kind)  # every bad file is named with its reason
            elif segno > start and str(path) not in named:
                # a good segment past the run is named as after a hole (or as a second copy)
                raise AssertionError(f"{path} neither used nor named")
        if any(s > start for s in good):
            assert found.missing == segment_name(1, start, SIZE)


def test_a_segment_is_never_read_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(_segment(END_SEGNO + 1, sysid=OURS.system_id, tli=1))
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / segment_name(1, END_SEGNO + 1, SIZE)).symlink_to(target)
    (tmp_path / "spool").mkdir()
    found = vet_survivors([tmp_path / "wal", tmp_path / "absent"], tmp_path / "spool", OURS, (END_SEGNO + 1) * SIZE)
    assert found.usable == [] and os.listdir(tmp_path / "spool") == []
    reasons = [s.reason for s in found.skipped]
    assert any("unreadable" in r for r in reasons) and len(reasons) == 2


_HEAP, _XACT = "rmgr: Heap len (rec/tot): 59/59, tx:", "rmgr: Transaction len (rec/tot): 34/34, tx:"
PG15 = "\n".join(
    [
        f"{_HEAP} 730, lsn: 0/04000028, desc: INSERT off 6 flags 0x00, blkref #0: rel 1663/5/16390 blk 0",
        f"{_XACT} 730, lsn: 0/04000068, prev 0/04000028, desc: COMMIT 2026-12-06 12:28:45.261207 UTC",
        f"{_HEAP} 748, lsn: 0/04000090, prev 0/04000068, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , "
        "blkref #0: rel 1663/5/16390 blk 0",
        f"{_HEAP} 749, lsn: 0/040000C8, desc: INSERT off 7 flags 0x00, blkref #0: rel 1663/5/16391 blk 2",
        f"{_XACT} 748, lsn: 0/04000108, prev 0/040000C8, desc: COMMIT 2026-12-06 12:28:46 UTC; subxacts: 749",
        f"{_XACT} 750, lsn: 0/04000130, prev 0/04000108, desc: ABORT 2026-12-06 12:28:47.000001 UTC",
        f"{_XACT} 751, lsn: 0/05000000, prev 0/04000130, desc: COMMIT 2026-12-06 12:28:48.5 UTC",
    ]
)
PG16 = PG15.replace("INSERT off 6 flags 0x00", "INSERT off: 6, flags: 0x00").replace(
    "DELETE off 4 flags 0x00 KEYS_UPDATED ", "DELETE xmax: 748, off: 4, infobits: [KEYS_UPDATED], flags: 0x00"
)


def test_pg_waldump_output_of_either_format_gives_commits_subtransactions_and_deletes() -> None:
    for text in (PG15, PG16):
        stretch = parse_stretch(text.splitlines(), parse_lsn("0/04000000"), parse_lsn("0/05000000"))
        assert [(c.xid, c.subxids) for c in stretch.committed] == [
            (730, ()),
            (748, (749,)),
        ]  # no abort, none past the end
        assert stretch.committed[1].relations == {16390, 16391}  # its own delete and its subtransaction's insert
        assert stretch.committed[0].time.isoformat() == "2026-12-06T12:28:45.261207+00:00"
        assert stretch.deletes == {(16390, 0, 4): 748}
