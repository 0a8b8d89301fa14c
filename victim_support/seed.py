"""``bcpctl registry seed``: write a synthetic registry where the configuration says the tenant's is.

The target is the SQLite file (or PostgreSQL database) of the tenant's 住民基本台帳 system, so
the ordinary backup of that system picks it up, or ``--out DIR/<tenant>.sqlite``. A SQLite
registry is written to a temporary file and renamed into place, so a backup running at the same
moment reads either the old or the new registry, never half of one. An existing database that
is not a synthetic registry is never overwritten without ``force``: the configured path could be
a real 住基 database.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from backup.sources import redact_dsn
from dc.config import Consortium
from dc.errors import N_, ConfigError, UsageError
from victim_support.errors import RegistryError
from victim_support.places import municipality
from victim_support.schema import create_registry, open_registry, registry_info, residents
from victim_support.settings import ExportSettings, registry_system, resolve
from victim_support.synthetic import SeedCounts, generate

_BATCH = 5000


@dataclass(frozen=True)
class SeedResult:
    tenant: str
    target: str
    population: int
    counts: SeedCounts
    machiaza: int
    real_machiaza: bool
    seconds: float


def seed_target(
    config: Consortium, settings: ExportSettings, tenant_id: str, out: Path | None, config_dir: Path | None
) -> str:
    """Where the tenant's registry goes: ``--out``, else its 住基 system's sqlite path or postgres DSN."""
    if out is not None:
        return str(out / f"{tenant_id}.sqlite")
    system_id = registry_system(config, settings, tenant_id)
    source = config.systems[system_id].source
    if source.kind == "sqlite" and source.path:
        return str(resolve(source.path, config_dir))
    if source.kind == "postgres" and source.dsn:
        return source.dsn
    raise ConfigError(
        N_("system {system_id} is a {kind} source; give --out DIR to seed {tenant_id}"),
        system_id=system_id,
        kind=source.kind,
        tenant_id=tenant_id,
    )


def seed_registries(
    config: Consortium,
    settings: ExportSettings,
    *,
    tenants: list[str] | None = None,
    scale: float = 1.0,
    out: Path | None = None,
    seed: int = 0,
    force: bool = False,
    config_dir: Path | None = None,
) -> list[SeedResult]:
    """Seed each selected tenant (all by default) with ``population × scale`` residents."""
    if not 0 < scale <= 10:
        raise UsageError(N_("--scale {scale} is outside (0, 10]"), scale=scale)
    selected = tenants or list(config.tenants)
    for tenant_id in selected:
        if tenant_id not in config.tenants:
            raise UsageError(
                N_("unknown tenant '{tenant_id}' (known: {tenants})"),
                tenant_id=tenant_id,
                tenants=", ".join(config.tenants),
            )
    targets = {t: seed_target(config, settings, t, out, config_dir) for t in selected}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    workers = min(len(selected), os.cpu_count() or 1)
    if workers < 2:
        return [seed_registry(targets[t], t, config, scale=scale, seed=seed, force=force) for t in selected]
    # Generation is pure Python: one process per tenant uses every core (4 tenants, 2 cores: ~2x).
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        jobs = [
            pool.submit(seed_registry, targets[t], t, config, scale=scale, seed=seed, force=force) for t in selected
        ]
        return [job.result() for job in jobs]


def seed_registry(
    target: str, tenant_id: str, config: Consortium, *, scale: float = 1.0, seed: int = 0, force: bool = False
) -> SeedResult:
    started = time.monotonic()
    tenant = config.tenants[tenant_id]
    population = max(1, round(tenant.population * scale))
    places = municipality(tenant.lg_code, tenant.name)
    rows, counts = generate(places, tenant.lg_code, population, seed=seed)
    info = {
        "lg_code": tenant.lg_code,
        "tenant": tenant_id,
        "pref": places.pref,
        "city": places.city,
        "synthetic": "true",
        "seed": str(seed),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if target.startswith("postgresql://"):
        engine = open_registry(target)
        try:
            _refuse_real(engine, target, force)
            with engine.begin() as conn:  # transactional DDL: the old registry stays until commit
                create_registry(conn, replace=True)
                _write(conn, rows, info)
        except SQLAlchemyError as exc:
            raise RegistryError(
                N_("cannot seed {target}: {exc}"), target=redact_dsn(target), exc=str(exc).splitlines()[0]
            ) from None
        finally:
            engine.dispose()
        shown = redact_dsn(target)
    else:
        path = Path(target)
        if path.exists():
            engine = open_registry(str(path), read_only=True)
            try:
                _refuse_real(engine, str(path), force)
            finally:
                engine.dispose()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            engine = open_registry(tmp)
            with engine.begin() as conn:
                create_registry(conn, replace=True)
                _write(conn, rows, info)
            engine.dispose()
            os.chmod(tmp, 0o600)  # resident data: owner only
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        shown = str(path)
    return SeedResult(
        tenant_id, shown, population, counts, len(places.machiaza), places.real, round(time.monotonic() - started, 2)
    )


def _write(conn: Connection, rows: Iterable[dict[str, Any]], info: dict[str, str]) -> None:
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            conn.execute(insert(residents), batch)
            batch = []
    if batch:
        conn.execute(insert(residents), batch)
    conn.execute(insert(registry_info), [{"key": k, "value": v} for k, v in info.items()])


def _refuse_real(engine: Engine, where: str, force: bool) -> None:
    """Refuse to replace a database that is not a synthetic registry (it could be a real 住基)."""
    if force:
        return
    try:
        tables = set(inspect(engine).get_table_names())
        if not tables:
            return
        synthetic = None
        if "registry_info" in tables:
            with engine.connect() as conn:
                synthetic = conn.execute(
                    select(registry_info.c.value).where(registry_info.c.key == "synthetic")
                ).scalar()
    except SQLAlchemyError as exc:
        raise RegistryError(
            N_("cannot inspect {where}: {exc}"), where=redact_dsn(where), exc=str(exc).splitlines()[0]
        ) from None
    if synthetic != "true":
        raise UsageError(
            N_("{where} holds a database that is not a synthetic registry; refusing (--force)"), where=redact_dsn(where)
        )
