"""What replication remembers between runs, in the control database.

* ``replication_pins``: per repository, the pinned manifest public key and the highest
  manifest sequence ever accepted — the trust anchor that makes a rollback detectable even
  if someone rewrites the target's own copy of the manifest.
* ``replication_pending_deletes``: when each object was first seen missing at the source;
  the target deletes it only after the configured delay (deletions are never mirrored at once).
* ``replication_locks``: the Object Lock retain-until date last set on each target object,
  so lock extension does not need a HEAD request per object per run.
* ``replication_lag``: per target and system, the newest snapshot at the source and at the
  target — the RPO a disaster would cost right now (read by monitoring and failover plans) —
  and the recovery point lag, which counts a postgres-wal system's archived WAL too.
* ``replication_runs``: one row per run with its figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    select,
    update,
)

from dc.state import UtcDateTime, metadata
from replication.records import Pin, SystemLag

pins = Table(
    "replication_pins",
    metadata,
    Column("repository", String(64), primary_key=True),
    Column("public_key", String(64), nullable=False),
    # manifest sequences are Unix milliseconds: beyond a 32-bit INTEGER
    Column("sequence", BigInteger, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

pending_deletes = Table(
    "replication_pending_deletes",
    metadata,
    Column("target", String(512), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("first_missing_at", UtcDateTime, nullable=False),
)

locks = Table(
    "replication_locks",
    metadata,
    Column("target", String(512), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("retain_until", UtcDateTime, nullable=False),
)

lag = Table(
    "replication_lag",
    metadata,
    Column("target", String(512), primary_key=True),
    Column("system", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_newest", UtcDateTime),
    Column("target_newest", UtcDateTime),
    Column("lag_seconds", Float),
    Column("measured_at", UtcDateTime, nullable=False),
    # the newest snapshot or archived WAL, whichever is later (migration 0010)
    Column("recovery_point_lag_seconds", Float),
)

runs = Table(
    "replication_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("objects_copied", Integer, nullable=False, default=0),
    Column("bytes_sent", BigInteger, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("manifest_sequence", BigInteger),
    Column("error", Text),
)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- manifest pins ----------------------------------------------------------------------

    def pin(self, repository: str) -> Pin | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(pins).where(pins.c.repository == repository)).first()
        return Pin(row.repository, row.public_key, row.sequence, row.manifest_sha256) if row else None

    def replicated_to(self, target: str) -> bool:
        """Whether a replication to ``target`` ever accepted a signed manifest (and so pinned its repository)."""
        query = select(runs.c.id).where(runs.c.target == target, runs.c.ok, runs.c.manifest_sequence.is_not(None))
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def set_pin(self, pin: Pin, now: datetime) -> None:
        values = {
            "public_key": pin.public_key,
            "sequence": pin.sequence,
            "manifest_sha256": pin.manifest_sha256,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            done = conn.execute(update(pins).where(pins.c.repository == pin.repository).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(pins).values(repository=pin.repository, **values))

    # -- delayed deletions --------------------------------------------------------------------

    def pending_deletes(self, target: str) -> dict[str, datetime]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(pending_deletes).where(pending_deletes.c.target == target))
            return {row.key: row.first_missing_at for row in rows}

    def mark_missing(self, target: str, keys: Iterable[str], now: datetime) -> None:
        rows = [{"target": target, "key": key, "first_missing_at": now} for key in keys]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(pending_deletes), rows)

    def clear_missing(self, target: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                conn.execute(
                    delete(pending_deletes).where(
                        and_(pending_deletes.c.target == target, pending_deletes.c.key.in_(keys[start : start + 500]))
                    )
                )

    # -- Object Lock ledger -------------------------------------------------------------------

    def locks(self, target: str) -> dict[str, datetime]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(locks).where(locks.c.target == target))
            return {row.key: row.retain_until for row in rows}

    def record_locks(self, target: str, until: dict[str, datetime]) -> None:
        if not until:
            return
        keys = list(until)
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                conn.execute(delete(locks).where(and_(locks.c.target == target, locks.c.key.in_(chunk))))
                conn.execute(insert(locks), [{"target": target, "key": k, "retain_until": until[k]} for k in chunk])

    def forget_locks(self, target: str, keys: Iterable[str]) -> None:
        keys = list(keys)
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                conn.execute(
                    delete(locks).where(and_(locks.c.target == target, locks.c.key.in_(keys[start : start + 500])))
                )

    # -- lag and runs ---------------------------------------------------------------------------

    def record_lag(self, source: str, target: str, lags: Iterable[SystemLag], now: datetime) -> None:
        with self.engine.begin() as conn:
            for item in lags:
                values = {
                    "source": source,
                    "source_newest": item.source_newest,
                    "target_newest": item.target_newest,
                    "lag_seconds": item.lag_seconds,
                    "recovery_point_lag_seconds": item.recovery_point_lag_seconds,
                    "measured_at": now,
                }
                where = and_(lag.c.target == target, lag.c.system == item.system)
                if conn.execute(update(lag).where(where).values(**values)).rowcount == 0:
                    conn.execute(insert(lag).values(target=target, system=item.system, **values))

    def lag(self, target: str | None = None) -> list[SystemLag]:
        query = select(lag) if target is None else select(lag).where(lag.c.target == target)
        with self.engine.connect() as conn:
            return [
                SystemLag(
                    row.system, row.source_newest, row.target_newest, row.lag_seconds, row.recovery_point_lag_seconds
                )
                for row in conn.execute(query.order_by(lag.c.system))
            ]

    def record_run(self, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(runs).values(**values))
