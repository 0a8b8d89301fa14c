"""Consortia for monitoring tests: real repositories, real sources, real control databases."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from backup.opening import init_repository
from dc.config import Consortium, load_config
from dc.state import open_state
from monitoring.metrics import ControlDatabaseCollector
from monitoring.provider import SourceContext
from monitoring.schedule import JobSpec, interval_trigger
from storage.url import open_backend
from tests.conftest import PASSWORD
from tests.servers.postgres import PostgresServer

#: Argon2id at its floor: tests open repositories hundreds of times.
CHEAP_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}


@dataclass
class Lab:
    """A consortium on local directories with its config file and control database."""

    root: Path
    config_path: Path
    raw: dict[str, Any]

    @property
    def config(self) -> Consortium:
        return load_config(self.config_path)[0]

    def write(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.raw, allow_unicode=True, sort_keys=False), "utf-8")

    def engine(self) -> Engine:
        return open_state(self.raw.get("control_db"))


def seed_sqlite(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS residents (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO residents (name) VALUES (?)", [(f"住民{i}",) for i in range(rows)])


def build_lab(
    root: Path,
    systems: dict[str, dict[str, Any]],
    *,
    tenants: dict[str, dict[str, Any]] | None = None,
    schedules: dict[str, Any] | None = None,
    hosts: dict[str, dict[str, Any]] | None = None,
    control_db: str | None = None,
    init_offsite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Lab:
    """Write a config for ``systems`` (each needs tenant and source), create the sources that
    are local files, and initialise the primary repository."""
    root.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {
        "consortium": "test-consortium",
        "sites": {
            "primary": {"prefecture": "茨城県", "role": "primary", "repository": str(root / "primary" / "repo")},
            "offsite": {"prefecture": "北海道", "role": "offsite", "repository": str(root / "offsite" / "repo")},
        },
        "tenants": tenants
        or {
            "goka": {"name": "五霞町", "lg_code": "085421", "population": 9376},
            "naka": {"name": "那珂市", "lg_code": "082261", "population": 55986},
        },
        "systems": {},
        "hosts": hosts or {},
        "schedules": {"backup": None, "replicate": None, "check": None, "drill": None, "health": None}
        | (schedules or {}),
    }
    if control_db:
        raw["control_db"] = control_db
        open_state(control_db, create=True).dispose()  # as bcpctl db upgrade installs it
    raw.update(extra or {})
    for system_id, spec in systems.items():
        spec = dict(spec)
        spec.setdefault("business", "住民基本台帳")
        spec.setdefault("tier", 1)
        source = spec.setdefault("source", {"kind": "sqlite", "path": str(root / "sources" / f"{system_id}.sqlite")})
        if source["kind"] == "sqlite" and not Path(source["path"]).exists() and not spec.pop("missing", False):
            seed_sqlite(Path(source["path"]), 20)
        spec.pop("missing", None)
        raw["systems"][system_id] = spec
    lab = Lab(root, root / "bcpctl.yaml", raw)
    lab.write()
    for site in ("primary", "offsite") if init_offsite else ("primary",):
        init_repository(open_backend(raw["sites"][site]["repository"], create=True), PASSWORD, kdf=CHEAP_KDF)
    return lab


#: two systems of two tenants with recovery targets, as most wiring tests need them
TWO_SYSTEMS: dict[str, dict[str, Any]] = {
    "goka-juki": {"tenant": "goka", "rpo": "15m", "rto": "4h"},
    "naka-juki": {"tenant": "naka", "rpo": "1h", "rto": "24h"},
}


def scrape(lab: Lab, engine: Engine) -> CollectorRegistry:
    """A fresh registry holding only the collector, read now (client_python's test pattern)."""
    registry = CollectorRegistry()
    registry.register(ControlDatabaseCollector(SourceContext(engine, lab.config)))
    return registry


def job_spec(job_id: str, kind: str, **where: str) -> JobSpec:
    return JobSpec(job_id, kind, interval_trigger(job_id, 60), 60, **where)


@pytest.fixture
def lab_factory(tmp_path: Path) -> Callable[..., Lab]:
    def make(systems: dict[str, dict[str, Any]], **kwargs: Any) -> Lab:
        return build_lab(tmp_path / "lab", systems, **kwargs)

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def control_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh control database on each engine bcpctl supports, as ``bcpctl db upgrade`` installs it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'control.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"control_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
        url = server.create_database(name).replace("postgresql://", "postgresql+psycopg://")
    open_state(url, create=True).dispose()
    yield url
