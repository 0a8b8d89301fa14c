"""Control-state copies are promoted only when the shipping site's controller signed them.

The attacker holds the repository key (every backup operator does) and writes ``_control``
snapshots through the library, exactly as ``control ship`` would — but not with the site's
signing key. Newer forged copies must be skipped like damaged ones, naming each, and the
genuine copy promoted; without a configured public key promotion works but says it trusted
unauthenticated copies.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from backup.errors import VerificationFailed
from backup.opening import open_repository
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from failover.controlplane import CONTROL_SYSTEM, COPY_SITE_TAG
from failover.copysign import SIGNATURE_TAG, Sealer, public_hex, statement_bytes, verify_copy
from storage.local import LocalBackend
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import PASSWORD, Cli
from tests.failover.conftest import cache_dir
from tests.failover.sites import Sites, build_sites, fail_over, lose_the_primary, ok, ship


def _forged(sites: Sites, tmp_path: Path, name: str) -> Path:
    """The primary's control database with every export request approved."""
    evil = tmp_path / f"{name}.db"
    shutil.copy(sites.primary / "control.db", evil)
    with sqlite3.connect(evil) as conn:
        conn.execute("UPDATE export_requests SET status = 'approved'")
    return evil


def _plant(sites: Sites, tmp_path: Path, database: Path, seal: Sealer | None) -> str:
    """A ``_control`` copy of the primary written with the repository key alone: its snapshot id."""
    tags = {"control_plane": "sqlite-shipping", COPY_SITE_TAG: "primary"}
    request = BackupRequest(parse_source(f"sqlite:{database}"), system=CONTROL_SYSTEM, tags=tags, seal=seal)
    with cache_dir(tmp_path / "cache"), open_repository(LocalBackend(sites.primary / "repo"), PASSWORD) as repo:
        return run_backup(repo, request).snapshot_id


def _sealed_by(key: Ed25519PrivateKey) -> Sealer:
    def seal(time: datetime, sha256: str, tables: dict[str, int]) -> dict[str, str]:
        return {SIGNATURE_TAG: key.sign(statement_bytes("primary", time, sha256, tables)).hex()}

    return seal


def test_copies_signed_by_another_key_or_unsigned_are_skipped(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    genuine = ok(ship(sites, cli))["copy"]
    other_key = _plant(sites, tmp_path, _forged(sites, tmp_path, "a"), _sealed_by(Ed25519PrivateKey.generate()))
    unsigned = _plant(sites, tmp_path, _forged(sites, tmp_path, "b"), None)
    ok(cli("replicate", "--config", str(sites.config_path), "--json"))
    lose_the_primary(sites)

    doc = ok(fail_over(sites, cli))
    control = doc["control_plane"]
    assert control["source"] == "restored" and control["copy"]["snapshot"] == genuine["snapshot_id"]
    assert [s["snapshot"] for s in control["skipped"]] == [unsigned, other_key]
    assert "not signed by primary's controller" in control["skipped"][0]["problem"]
    assert "does not verify with sites.primary.control_public_key" in control["skipped"][1]["problem"]
    assert any(unsigned[:8] in w and "does not verify" in w for w in doc["warnings"])
    with sqlite3.connect(sites.offsite / "control.db") as conn:
        approved = conn.execute("SELECT count(*) FROM export_requests WHERE status = 'approved'").fetchone()[0]
    assert approved == 0


def test_without_a_public_key_promotion_works_and_warns_and_config_check_says_so(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    raw = yaml.safe_load(sites.config_path.read_text(encoding="utf-8"))
    for site in raw["sites"].values():
        del site["control_public_key"]
    sites.config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    checked = ok(cli("config", "check", "--config", str(sites.config_path), "--json"))
    assert [w.split(" are not")[0] for w in checked["warnings"]] == [
        "control-state copies of primary",
        "control-state copies of offsite",
    ]
    japanese = cli("config", "check", "--config", str(sites.config_path), env=_env({"BCPCTL_LANG": "ja"}))
    warned = [line for line in japanese.stdout.splitlines() if ": 警告: " in line]
    assert len(warned) == 2 and all("管理状態のコピーは認証されていません" in line for line in warned), japanese.stdout
    shown = [line.split(": 警告: ")[1] for line in warned]
    assert [english_words(line, "primary", "offsite", "bcpctl control keygen") for line in shown] == [[], []]
    genuine = ok(ship(sites, cli))["copy"]
    lose_the_primary(sites)
    doc = ok(fail_over(sites, cli))
    assert doc["control_plane"]["copy"]["snapshot"] == genuine["snapshot_id"]
    assert any("control-state copies of primary are not authenticated" in w for w in doc["warnings"])


def test_a_signing_key_that_does_not_match_the_public_key_refuses_to_ship(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    raw = yaml.safe_load(sites.config_path.read_text(encoding="utf-8"))
    raw["sites"]["primary"]["control_public_key"] = public_hex(Ed25519PrivateKey.generate())
    sites.config_path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    shipped = ship(sites, cli)
    assert shipped.returncode != 0
    assert "does not match sites.primary.control_public_key" in shipped.stdout + shipped.stderr


def test_keygen_writes_an_owner_only_key_once_and_prints_its_public_key(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "sign.pem"
    made = ok(cli("control", "keygen", "--out", str(out), "--json"))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    from failover.copysign import load_signing_key

    assert public_hex(load_signing_key(out)) == made["public_key"]
    before = out.read_bytes()
    again = cli("control", "keygen", "--out", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
    assert out.read_bytes() == before


_KEY = Ed25519PrivateKey.generate()
_WHEN = datetime(2026, 3, 11, 14, 46, 18, 123456, tzinfo=UTC)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    field=st.sampled_from(["site", "time", "sha256", "tables"]),
    sha=st.text("0123456789abcdef", min_size=64, max_size=64),
)
def test_a_signature_binds_every_field_of_the_statement(field: str, sha: str) -> None:
    tables = {"audit_log": 3, "export_requests": 1}
    tags = {SIGNATURE_TAG: _KEY.sign(statement_bytes("primary", _WHEN, sha, tables)).hex()}
    public = public_hex(_KEY)
    verify_copy(public, tags, "primary", _WHEN, sha, tables)
    changed = {
        "site": ("offsite", _WHEN, sha, tables),
        "time": ("primary", _WHEN.replace(microsecond=0), sha, tables),
        "sha256": ("primary", _WHEN, sha[:-1] + ("0" if sha[-1] != "0" else "1"), tables),
        "tables": ("primary", _WHEN, sha, {**tables, "export_requests": 2}),
    }[field]
    with pytest.raises(VerificationFailed):
        verify_copy(public, tags, *changed)
