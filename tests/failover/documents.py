"""Stored run documents for the report tests: a finished drill's JSON as a run writes it, put in a control database.

The times are pinned at 00:30 and 08:59 JST, where UTC's date is still the day before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dc.clock import JST

PINNED = {
    datetime(2026, 12, 13, 0, 30, tzinfo=JST).astimezone(UTC): "2026-12-13 00:30 JST",
    datetime(2026, 12, 13, 8, 59, tzinfo=JST).astimezone(UTC): "2026-12-13 08:59 JST",
}
#: the date a surface shows when it forgets the conversion
WRONG_DAY = "2026-12-12"


def document(when: datetime) -> dict[str, Any]:
    """A finished drill's stored document, every time in it the pinned one (as the run writes them)."""
    iso = when.isoformat()
    return {
        "id": "drill-pinned",
        "kind": "drill",
        "mode": "isolated",
        "consortium": "ibaraki-kikan",
        "status": "passed",
        "site": "offsite",
        "declared_at": iso,
        "finished_at": iso,
        "operator": "ops",
        "workers": 2,
        "systems": [
            {
                "system": "goka-juki",
                "tenant": "goka",
                "business": "住民基本台帳",
                "tier": 1,
                "group": 1,
                "status": "passed",
                "snapshot_id": "0123456789abcdef",
                "snapshot_time": iso,
                "steps": {"fetch": 1.0, "decrypt": 1.0, "restore": 2.0, "verify": 1.0},
                "started_at": 0.0,
                "finished_at": 3.0,
                "rpo_seconds": 60.0,
                "rpo_target": 900.0,
                "rpo_met": True,
                "rto_seconds": 3.0,
                "rto_target": 14400.0,
                "rto_met": True,
                "checks": [],
            }
        ],
        "checks": [],
        "cleanup": {"removed": ["db"], "leftovers": [], "completed": True},
    }


def store_run(control: Path | Engine, doc: dict[str, Any], when: datetime) -> None:
    """``doc`` as a finished run of the control database (a SQLite file, or an open engine): what reports read."""
    from dc.state import open_state
    from failover.records import finish_run, start_run

    state = open_state(f"sqlite:///{control}") if isinstance(control, Path) else control
    try:
        start_run(
            state,
            doc["id"],
            kind=doc["kind"],
            mode=doc["mode"],
            consortium=doc["consortium"],
            site=doc.get("site"),
            declared_at=when,
            deadline=None,
        )
        finish_run(state, doc["id"], status=doc["status"], error=None, document=doc)
    finally:
        if state is not control:
            state.dispose()
