"""The main job on embedded defaults: the continuity story on local directories and SQLite.

``bcpctl demo`` builds the reference consortium from ``examples/ibaraki.yaml`` in a fresh
working directory (kept afterwards), with the primary and offsite sites as local
directories and each system's source as a small seeded SQLite database or file tree; it
backs everything up, shows a second day of changes as an incremental backup, ships the
ciphertext offsite, and restores every system there, verified. Each step returns data; the
command renders it.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ibaraki.yaml"

_SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "山本", "中村", "小林", "加藤", "吉田", "山口"]
_GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "陽菜", "大翔", "結衣", "蓮", "さくら"]


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoSummary:
    ok: bool
    workdir: str
    steps: list[Step]
    backup: dict[str, int]
    replication: dict[str, Any]
    restores: list[dict[str, Any]]


def _seed_registry(path: Path, people: int, rng: random.Random, day: int) -> None:
    """A small resident table (fully synthetic); day 2 adds births and moves a district."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS residents (atena_no INTEGER PRIMARY KEY, name TEXT, address TEXT)")
    if day == 1:
        rows = [
            (i, rng.choice(_SURNAMES) + rng.choice(_GIVEN), f"{rng.randint(1, 40)}丁目{rng.randint(1, 30)}番")
            for i in range(1, people + 1)
        ]
        conn.executemany("INSERT INTO residents VALUES (?,?,?)", rows)
    else:
        (last,) = conn.execute("SELECT max(atena_no) FROM residents").fetchone()
        conn.executemany(
            "INSERT INTO residents VALUES (?,?,?)",
            [(last + i, rng.choice(_SURNAMES) + rng.choice(_GIVEN), "新町1番") for i in range(1, people // 50)],
        )
        conn.execute("UPDATE residents SET address = address || '（転居）' WHERE atena_no % 97 = 0")
    conn.commit()
    conn.close()


def _seed_files(root: Path, count: int, rng: random.Random, day: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count if day == 1 else count // 10):
        name = f"form-{i:04d}.txt" if day == 1 else f"form-day{day}-{i:04d}.txt"
        (root / name).write_text(f"申請書 {i}\n" + "".join(rng.choice(_SURNAMES) for _ in range(200)), encoding="utf-8")
    if day == 1:
        (root / "scan.bin").write_bytes(rng.randbytes(2 * 1024 * 1024))


def demo_config(workdir: Path) -> dict[str, Any]:
    """The example consortium with every site and source moved into ``workdir``."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["control_db"] = f"sqlite:///{workdir / 'control.db'}"
    for name, site in raw["sites"].items():
        site["repository"] = str(workdir / name / "repo")
        site.pop("object_lock_days", None)
        site["known_hosts"] = str(workdir / "known_hosts")
        site["drill_dir"] = str(workdir / name / "drill")
        site.pop("drill_dsn", None)
    for system_id, system in raw["systems"].items():
        if system["source"]["kind"] == "path":
            system["source"] = {"kind": "path", "path": str(workdir / "sources" / system_id)}
        else:
            system["source"] = {"kind": "sqlite", "path": str(workdir / "sources" / f"{system_id}.sqlite")}
    raw["secrets"] = {"password_file": str(workdir / "secrets" / "passphrase")}
    return raw


def run_demo(workdir: Path, on_step: Callable[[str], None] | None = None, *, scale: float = 0.05) -> DemoSummary:
    from backup.jobs import backup_systems, site_repository
    from backup.repository import init_repository
    from backup.restorer import restore_snapshot
    from backup.snapshot import find_snapshot
    from dc.config import load_config
    from dc.state import open_state
    from replication.url import open_backend

    workdir.mkdir(parents=True, exist_ok=True)
    # The demo keeps everything it makes, caches included, inside its working directory.
    os.environ.setdefault("BCPCTL_CACHE_DIR", str(workdir / "cache"))
    steps: list[Step] = []
    rng = random.Random(20110311)

    def step(name: str) -> Callable[[Callable[[], dict[str, Any]]], dict[str, Any]]:
        def run(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            if on_step:
                on_step(name)
            started = time.monotonic()
            detail = fn()
            steps.append(Step(name, bool(detail.pop("ok", True)), round(time.monotonic() - started, 3), detail))
            return detail

        return run

    config_path = workdir / "bcpctl.yaml"
    secrets_dir = workdir / "secrets"

    def create() -> dict[str, Any]:
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        passphrase = secrets_dir / "passphrase"
        passphrase.write_text(secrets.token_urlsafe(24) + "\n")
        passphrase.chmod(0o600)
        config_path.write_text(yaml.safe_dump(demo_config(workdir), allow_unicode=True, sort_keys=False), "utf-8")
        config, _ = load_config(config_path)
        for system in config.systems.values():
            tenant = config.tenants[system.tenant]
            if system.source.kind == "sqlite":
                _seed_registry(Path(system.source.path), max(100, int(tenant.population * scale)), rng, day=1)
            else:
                _seed_files(Path(system.source.path), 200, rng, day=1)
        init_repository(
            open_backend(config.sites[config.primary_site].repository, create=True), passphrase.read_text().strip()
        )
        return {"tenants": len(config.tenants), "systems": len(config.systems), "config": str(config_path)}

    step("create consortium")(create)
    config, config_dir = load_config(config_path)
    state = open_state(config.control_db)
    totals = {"bytes_in": 0, "bytes_stored": 0, "incremental_added_bytes": 0}

    def backup_day(day: int) -> dict[str, Any]:
        if day == 2:
            for system in config.systems.values():
                if system.source.kind == "sqlite":
                    _seed_registry(Path(system.source.path), 1000, rng, day=2)
                else:
                    _seed_files(Path(system.source.path), 200, rng, day=2)
        with site_repository(config, config.primary_site, open_backend, config_dir) as repo:
            outcomes = backup_systems(config, repo, None, state=state, config_dir=config_dir)
        added = sum(o.result.bytes_added for o in outcomes if o.result)
        read = sum(o.result.bytes_read for o in outcomes if o.result)
        if day == 1:
            totals["bytes_in"] = sum(o.result.bytes_total for o in outcomes if o.result)
            totals["bytes_stored"] = added
        else:
            totals["incremental_added_bytes"] = added
        return {"ok": all(o.ok for o in outcomes), "systems": len(outcomes), "bytes_read": read, "bytes_added": added}

    step("back up every system (day 1)")(lambda: backup_day(1))
    step("incremental backup after a day of changes")(lambda: backup_day(2))

    replication: dict[str, Any] = {}

    def ship() -> dict[str, Any]:
        # Until the replication subsystem lands, a keyless object copy: ciphertext only.
        src = Path(config.sites[config.primary_site].repository)
        dst = Path(config.sites[config.offsite_sites[0]].repository)
        count = size = 0
        for path in sorted(src.rglob("*")):
            if path.is_file():
                target = dst / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                count += 1
                size += path.stat().st_size
        replication.update(objects=count, bytes=size)
        return dict(replication)

    step("ship ciphertext offsite")(ship)
    restores: list[dict[str, Any]] = []

    def restore_offsite() -> dict[str, Any]:
        from backup.dbrestore import verify_sqlite

        offsite = config.offsite_sites[0]
        ok = True
        with site_repository(config, offsite, open_backend, config_dir) as repo:
            for system_id in config.systems:
                snap = find_snapshot(repo, f"latest:{system_id}")
                target = workdir / offsite / "restore" / system_id
                result = restore_snapshot(repo, snap, target)
                mismatches = {}
                if snap.source_kind == "sqlite":
                    mismatches = verify_sqlite(snap, target / Path(snap.source_spec).name)
                verified = not result.mismatches and not mismatches
                ok = ok and verified
                restores.append(
                    {
                        "system": system_id,
                        "snapshot": snap.id,
                        "files": result.files,
                        "bytes": result.bytes,
                        "tables": snap.verify.get("tables", {}),
                        "verified": verified,
                    }
                )
        return {"ok": ok, "systems": len(restores)}

    step("restore every system at the offsite site and verify")(restore_offsite)
    return DemoSummary(
        ok=all(s.ok for s in steps),
        workdir=str(workdir),
        steps=steps,
        backup=totals,
        replication=replication,
        restores=restores,
    )


def default_workdir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(os.environ.get("BCPCTL_DEMO_DIR", "demo-work")).absolute() / stamp
