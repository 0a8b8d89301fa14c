"""pgBackRest as the WAL benchmark configures it must not give up on WAL sooner than the benchmark
itself waits: a CPU-starved asynchronous ``archive-get`` that gives up on the backup's checkpoint
segment leaves the restored cluster unable to start, a failure of the machine's load, not of the
tool being measured."""

from __future__ import annotations

import re
import subprocess

import pytest

from bench.walarchives import STANZA, WAIT_SECONDS, Archives, make_archives

# every pgBackRest command of the benchmark that waits for WAL and gives up after archive-timeout
WAITING_COMMANDS = ("archive-get", "archive-push", "backup")


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> Archives:  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("archives")
    return make_archives(base, base / "pg", 5432, base, None, base / "relay")


@pytest.mark.parametrize("command", WAITING_COMMANDS)
def test_pgbackrest_waits_for_wal_as_long_as_the_benchmark(archives: Archives, command: str) -> None:
    assert archives.pgbackrest[-1] == f"--stanza={STANZA}"
    shown = subprocess.run(
        [*archives.pgbackrest, "help", command, "archive-timeout"], capture_output=True, text=True, check=True
    ).stdout
    current = re.search(r"^current: (\S+)$", shown, re.MULTILINE)  # absent when left at pgBackRest's default
    assert current is not None, shown
    assert float(current.group(1)) >= WAIT_SECONDS
