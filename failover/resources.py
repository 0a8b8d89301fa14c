"""What a drill creates outside the repository (sandbox databases, directories), recorded so
that a killed run's leftovers are found and removed: each resource is recorded *before* it is
created, then marked as it is verified gone.

Beside :mod:`failover.records` (the runs that own these resources, and the table they live in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from dc.clock import utcnow
from dc.state import inserted_id
from failover.records import drill_resources, drill_runs, naming_damage


@dataclass(frozen=True)
class ResourceRecord:
    id: int
    run_id: str
    kind: str
    name: str
    location: str
    state: str
    detail: str | None


def intend_resource(state: Engine, run_id: str, kind: str, name: str, location: str) -> int:
    """Record a resource before creating it, so a kill between the two still leaves a trace."""
    with state.begin() as conn:
        result = conn.execute(
            insert(drill_resources).values(
                run_id=run_id, kind=kind, name=name, location=location, state="intended", created_at=utcnow()
            )
        )
        return inserted_id(result)


def set_resource_state(state: Engine, resource_id: int, new_state: str, detail: str | None = None) -> None:
    values: dict[str, Any] = {"state": new_state, "detail": detail}
    if new_state == "removed":
        values["removed_at"] = utcnow()
    with state.begin() as conn:
        conn.execute(update(drill_resources).where(drill_resources.c.id == resource_id).values(**values))


def open_resources(state: Engine, run_id: str) -> list[ResourceRecord]:
    """Resources of ``run_id`` not yet verified gone, newest first (dependents before what they need)."""
    query = (
        select(drill_resources)
        .where(and_(drill_resources.c.run_id == run_id, drill_resources.c.state != "removed"))
        .order_by(drill_resources.c.id.desc())
    )
    with state.connect() as conn, naming_damage(state):
        return [
            ResourceRecord(r.id, r.run_id, r.kind, r.name, r.location, r.state, r.detail) for r in conn.execute(query)
        ]


def leftover_runs(state: Engine) -> list[str]:
    """Finished runs that still own resources (a cleanup that was cut off or failed)."""
    query = (
        select(drill_resources.c.run_id)
        .join(drill_runs, drill_runs.c.id == drill_resources.c.run_id)
        .where(and_(drill_resources.c.state != "removed", drill_runs.c.status != "running"))
        .distinct()
    )
    with state.connect() as conn:
        return sorted(row.run_id for row in conn.execute(query))
