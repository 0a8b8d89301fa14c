"""``wal get --prefetch N --spool DIR``: one repository unlock serves the next N segments, with
exactly the archived bytes, and the spool never stands in for the archive's authority."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backup.test_wal import _archived, _switch
from tests.backup.walsite import SYSTEM, WalSite, wal_site
from tests.conftest import Cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def site(cli: Cli) -> Iterator[WalSite]:
    with wal_site(cli.env) as made:
        made.sql("CREATE TABLE juki (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), v text)")
        yield made


def test_one_unlock_prefetches_the_next_segments_and_they_are_served_without_the_key(
    site: WalSite, tmp_path: Path
) -> None:
    cli = Cli(site.relay.env)
    names = [_switch(site) for _ in range(4)]
    _archived(site, names[-1])
    originals = {n: (site.cluster.datadir / "pg_wal" / n).read_bytes() for n in names}
    spool = tmp_path / "spool"
    first = cli("wal", "get", names[0], str(tmp_path / "first"), "--system", SYSTEM, "--prefetch", "2",
                "--spool", str(spool))  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "first").read_bytes() == originals[names[0]]
    assert sorted(p.name for p in spool.iterdir()) == names[1:3]  # the next two, nothing else
    # the key is gone now (a wrong password): only what the spool holds can still be served
    (site.base / "password").write_text("not the password")
    for name in names[1:3]:
        got = cli("wal", "get", name, str(tmp_path / name), "--system", SYSTEM, "--spool", str(spool))
        assert got.returncode == 0, got.stderr
        assert (tmp_path / name).read_bytes() == originals[name]
    assert list(spool.iterdir()) == []  # each spooled file is handed over once
    missing = cli("wal", "get", names[3], str(tmp_path / "last"), "--system", SYSTEM, "--spool", str(spool))
    assert missing.returncode == 3 and not (tmp_path / "last").exists()  # not spooled: the archive decides


def test_prefetch_without_a_spool_is_refused(site: WalSite, tmp_path: Path) -> None:
    cli = Cli(site.relay.env)
    got = cli("wal", "get", "000000010000000000000001", str(tmp_path / "x"), "--system", SYSTEM, "--prefetch", "4")
    assert got.returncode == 2 and "--spool" in got.stderr and not (tmp_path / "x").exists()
