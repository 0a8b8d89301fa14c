"""``make bench`` runs its four benchmarks: backups, replication on a synthetic repository,
PostgreSQL WAL archiving against pgBackRest, then the offsite's recovery point under that load."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_bench_runs_backup_then_replication_then_wal_then_rpo() -> None:
    dry = subprocess.run(
        ["make", "-n", "bench", "REPLICATION_MIB=64"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    commands = [line for line in dry.stdout.splitlines() if "python -m bench." in line]
    assert [c.split("python -m ")[1].split()[0] for c in commands] == [
        "bench.run",
        "bench.replication",
        "bench.wal",
        "bench.rpo",
    ]
    assert commands[1].endswith("-m bench.replication --synthetic 64 --out bench/out/replication.json")
    assert commands[2].endswith(
        "-m bench.wal --scale 20 --seconds 120 --backlog 48 --rounds 3 --out bench/out/wal.json"
    )
    assert commands[3].endswith("-m bench.rpo --scale 20 --seconds 120 --out bench/out/rpo.json")
