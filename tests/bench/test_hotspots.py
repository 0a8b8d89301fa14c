"""py-spy's collapsed stacks folded into self and inclusive shares."""

from __future__ import annotations

from bench.hotspots import summarise

RAW = """\
process 1:"bcpctl backup";thread (0x1);main (cli.py:10);run_backup (run.py:80);add (writer.py:40) 6
process 1:"bcpctl backup";thread (0x2);worker (archiver.py:200);compress (compress.py:20) 3
process 1:"bcpctl backup";thread (0x2);worker (archiver.py:200) 1
garbage line
"""


def test_self_and_inclusive_shares() -> None:
    own, inclusive, total = summarise(RAW, top=10)
    assert total == 10
    assert own[0] == ("add (writer.py:40)", 0.6)
    assert dict(own)["compress (compress.py:20)"] == 0.3
    assert dict(inclusive)["worker (archiver.py:200)"] == 0.4
    assert len(own) == 3  # three distinct leaf frames
    assert inclusive[0][1] == 0.6


def test_empty_profile() -> None:
    assert summarise("", top=5) == ([], [], 0)
