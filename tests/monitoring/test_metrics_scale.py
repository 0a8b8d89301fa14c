"""``/metrics`` at a prefecture's scale: statements per scrape do not grow with systems or history,
and the precomputed ``backup_latest`` says what the run history says."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, event, insert, select

from backup.jobs import SystemBackup, record_run
from backup.run import BackupRequest, BackupResult
from backup.sources import parse_source
from dc.clock import utcnow
from dc.state import backup_latest, backup_runs, open_state
from monitoring.metrics import ControlDatabaseCollector
from monitoring.provider import SourceContext
from replication.ledger import lag
from storage.url import repository_url_key
from tests.monitoring.conftest import Lab


def _result(system: str, n: int) -> BackupResult:
    return BackupResult(
        f"{n:064x}", utcnow(), "path:/x", system, "goka", None, 1, 0, 0, 0, 500, 500 + n, n, 1, n, 0.1 + n, {}, []
    )


def _record(engine: Engine, repository: str, system: str, ok: bool, n: int) -> None:
    request = BackupRequest(parse_source("path:/x"), system=system, tenant="goka")
    outcome = SystemBackup(system, ok, _result(system, n) if ok else None, None if ok else "failed")
    record_run(engine, repository, request, utcnow() - timedelta(minutes=100 - n), outcome)


def _statements(engine: Engine, registry: CollectorRegistry) -> int:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        list(registry.collect())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_statements_per_scrape_do_not_grow_with_systems(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    counts = []
    for size in (3, 60):
        systems = {f"goka-{i:03d}": {"tenant": "goka", "rpo": "15m", "missing": True} for i in range(size)}
        lab = lab_factory(systems, control_db=f"sqlite:///{tmp_path / f'control{size}.db'}")
        engine = lab.engine()
        url = repository_url_key(lab.config.sites["primary"].repository)
        for n, system in enumerate(systems):
            _record(engine, url, system, True, n)
            _record(engine, url, system, n % 3 != 0, n + 1)
        offsite = repository_url_key(lab.config.sites["offsite"].repository)
        with engine.begin() as conn:
            conn.execute(
                insert(lag),
                [
                    {"target": offsite, "system": s, "source": url, "target_newest": utcnow(), "measured_at": utcnow()}
                    for s in list(systems)[: size // 2]
                ],
            )
        registry = CollectorRegistry()
        registry.register(ControlDatabaseCollector(SourceContext(engine, lab.config)))
        counts.append(_statements(engine, registry))
        engine.dispose()
        shutil.rmtree(lab.root)
    assert counts[1] == counts[0], counts


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["r1", "r2"]), st.booleans()), max_size=30))
def test_backup_latest_is_the_newest_run_and_newest_success(runs: list[tuple[str, str, bool]]) -> None:
    engine = open_state("sqlite://", create=True)
    for n, (system, repository, ok) in enumerate(runs):
        _record(engine, f"file:///{repository}", f"goka-{system}", ok, n)
    with engine.connect() as conn:
        history = conn.execute(select(backup_runs).order_by(backup_runs.c.id)).all()
        latest = {(r.system, r.repository): r for r in conn.execute(select(backup_latest))}
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for row in history:
        entry = expected.setdefault((row.system, row.repository), {"ok_run_id": None})
        entry["last_run_id"], entry["last_ok"] = row.id, row.ok
        if row.ok:
            entry.update(ok_run_id=row.id, ok_finished_at=row.finished_at, ok_bytes_added=row.bytes_added)
    assert set(latest) == set(expected)
    for key, entry in expected.items():
        row = latest[key]
        assert (row.last_run_id, row.last_ok, row.ok_run_id) == (
            entry["last_run_id"],
            entry["last_ok"],
            entry["ok_run_id"],
        )
        if entry["ok_run_id"] is not None:
            assert (row.ok_finished_at, row.ok_bytes_added) == (entry["ok_finished_at"], entry["ok_bytes_added"])
    engine.dispose()
