"""Two sites that keep their control state in their own directories, for control-plane tests.

A small consortium (two SQLite systems of one town) whose sites each have their own
``control_db`` and their own key signing the control-state copies they ship; approvers are
enrolled and the systems backed up at the primary through the real ``bcpctl``, as an operator would.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backup.opening import init_repository
from failover.copysign import write_new_key
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD, Cli


@dataclass
class Sites:
    root: Path
    config_path: Path

    @property
    def primary(self) -> Path:
        return self.root / "primary"

    @property
    def offsite(self) -> Path:
        return self.root / "offsite"

    def offsite_env(self) -> dict[str, str]:
        """A shell at the offsite: its own site, its own index cache."""
        return {"BCPCTL_SITE": "offsite", "BCPCTL_CACHE_DIR": str(self.offsite / "cache")}

    def objects(self, folder: str) -> set[Path]:
        return {p for p in (self.offsite / "repo" / folder).rglob("*") if p.is_file()}


def build_sites(root: Path, cli: Cli, control: dict[str, dict[str, Any]] | None = None) -> Sites:
    """Two sites, two SQLite systems and a file tree, backed up at the primary; approvers enrolled there.

    ``control``: per site, what replaces its SQLite ``control_db`` (a PostgreSQL one and its
    ``control_server``)."""
    systems_dir = root / "primary" / "systems"
    systems_dir.mkdir(parents=True)
    for name in ("goka-juki", "goka-kokuho"):
        with sqlite3.connect(systems_dir / f"{name}.sqlite") as conn:
            conn.execute("CREATE TABLE residents (atena_no INTEGER PRIMARY KEY, name TEXT)")
            conn.executemany("INSERT INTO residents VALUES (?, ?)", [(i, f"住民{i}") for i in range(1, 300)])
    raw: dict[str, Any] = {
        "consortium": "test-kikan",
        "sites": {
            name: {
                "prefecture": prefecture,
                "role": name,
                "repository": str(root / name / "repo"),
                "control_db": f"sqlite:///{root / name / 'control.db'}",
                "drill_dir": str(root / name / "drill"),
            }
            for name, prefecture in (("primary", "茨城県"), ("offsite", "北海道"))
        },
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "systems": {
            name: {
                "tenant": "goka",
                "business": business,
                "tier": tier,
                "rpo": "15m",
                "rto": "4h",
                "source": {"kind": "sqlite", "path": str(systems_dir / f"{name}.sqlite")},
                "restore_dir": str(root / "offsite" / "live" / name),
            }
            for name, business, tier in (("goka-juki", "住民基本台帳", 1), ("goka-kokuho", "国民健康保険", 2))
        },
        "control_plane": {"rpo": "10m"},
        "drills": {"failover": {"hooks": "manual"}, "report_dir": str(root / "offsite" / "reports")},
    }
    for name in raw["sites"]:
        # Each controller signs the copies it ships (failover.copysign). The keys sit outside the
        # site directories the disaster removes: a rebuilt primary gets its key back from where
        # it was kept (or a new one), and its tests ship again after failback.
        key = root / "controller-keys" / f"{name}.pem"
        key.parent.mkdir(parents=True, exist_ok=True)
        raw["sites"][name].update(control_signing_key_file=str(key), control_public_key=write_new_key(key))
    for name, fields in (control or {}).items():
        raw["sites"][name].update(fields)
    config_path = root / "bcpctl.yaml"
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    init_repository(LocalBackend(root / "primary" / "repo", create=True), PASSWORD, kdf=FAST_KDF)
    sites = Sites(root, config_path)
    ok(cli("db", "upgrade", "--config", str(config_path)))  # installation: the primary's control state begins
    ok(cli("backup", "run", "--config", str(config_path), "--json"))
    for approver in ("somu-kacho", "bosai-kacho"):
        secret = root / "officials" / approver
        secret.parent.mkdir(exist_ok=True)
        ok(cli(*enroll(sites, approver), "--secret-file", str(secret), "--generate"))
    return sites


def enroll(sites: Sites, approver: str) -> tuple[str, ...]:
    return ("approver", "enroll", "--config", str(sites.config_path), "--approver", approver)


def ok(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


def ship(sites: Sites, cli: Cli, **env: str) -> subprocess.CompletedProcess[str]:
    return cli("control", "ship", "--config", str(sites.config_path), "--json", env=env)


def lose_the_primary(sites: Sites) -> None:
    shutil.rmtree(sites.primary)


def fail_over(sites: Sites, cli: Cli, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "failover", "execute", "--config", str(sites.config_path), "--to", "offsite", "--yes", "--json", *extra,
        env=sites.offsite_env(),
    )  # fmt: skip
