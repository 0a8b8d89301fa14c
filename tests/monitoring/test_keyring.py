"""``serve`` unlocks each repository once: many scheduled backups, one key derivation."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backup import keys
from dc.state import backup_runs
from monitoring.controller import Controller, ServiceSettings
from monitoring.jobs import JobRunner
from tests.monitoring.conftest import Lab


def test_scheduled_backups_derive_the_key_once_and_shutdown_drops_it(
    lab_factory: Callable[..., Lab], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    systems = {}
    for i in range(6):
        source = tmp_path / "sources" / f"s{i}"
        source.mkdir(parents=True)
        (source / "a.csv").write_text(f"{i},住民\n")
        systems[f"goka-{i}"] = {"tenant": "goka", "rpo": "15m", "source": {"kind": "path", "path": str(source)}}
    lab = lab_factory(systems)
    calls: list[int] = []
    real = keys._kek
    monkeypatch.setattr(keys, "_kek", lambda *a: calls.append(1) or real(*a))
    engine = lab.engine()
    controller = Controller(engine, lab.config, lab.root, ServiceSettings())
    runner = JobRunner(controller.context, controller.ledger, controller.specs)
    backups = [job for job, spec in controller.specs.items() if spec.kind == "backup"]
    assert len(backups) == 6
    statuses = []
    with ThreadPoolExecutor(4) as pool:
        for _round in range(4):  # as the scheduler fires them: one run of a job at a time
            statuses += pool.map(runner.run, backups)
    assert statuses == ["ok"] * 24
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(backup_runs).where(backup_runs.c.ok)).scalar() == 24
    assert len(calls) == 1
    assert len(controller.keyring) == 1
    controller.request_stop()
    assert controller.run() == 0  # stops at once, as SIGTERM does
    assert len(controller.keyring) == 0
    engine.dispose()
