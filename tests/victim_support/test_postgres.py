"""A PostgreSQL registry: seeded into the database, backed up with pg_dump, built from a scratch restore."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.conftest import PASSWORD
from tests.servers.postgres import PostgresServer
from tests.victim_support.conftest import APPROVER_SECRETS, FAST_KDF, config_doc, write_keys

pytestmark = pytest.mark.postgres


def test_registry_in_postgres_round_trip(postgres: PostgresServer, tmp_path: Path) -> None:
    from backup.jobs import backup_systems, site_repository
    from backup.opening import init_repository
    from dc.config import load_config
    from dc.state import open_state
    from storage.url import open_backend
    from tests.victim_support.flow import read_csv
    from victim_support.build import build_export
    from victim_support.bundle import open_bundle
    from victim_support.decisions import decide
    from victim_support.policy import Scope
    from victim_support.prefiling import file_request
    from victim_support.seed import seed_registries
    from victim_support.settings import load_export_settings
    from victim_support.signing import load_verify_key
    from victim_support.store import NewRequest

    dsn = postgres.create_database("goka_juki")
    recipient, verify_key = write_keys(tmp_path)
    doc = config_doc(tmp_path, recipient)
    doc["systems"]["goka-juki"]["source"] = {"kind": "postgres", "dsn": dsn}  # type: ignore[index]
    doc["sites"]["offsite"]["drill_dsn"] = postgres.dsn()  # type: ignore[index]
    doc["exports"]["approvals"] = {}  # type: ignore[index]
    (tmp_path / "bcpctl.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    config, path = load_config(tmp_path / "bcpctl.yaml")
    settings = load_export_settings(config, str(path))

    (seeded,) = seed_registries(config, settings, scale=0.02, config_dir=tmp_path)
    assert seeded.target.startswith("postgresql://") and seeded.counts.residents == 188
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from residents where status = '1'").fetchone()[0] == 188

    init_repository(open_backend(str(tmp_path / "primary"), create=True), PASSWORD, kdf=FAST_KDF)
    with site_repository(config, "primary", tmp_path) as repo:
        assert all(o.ok for o in backup_systems(config, repo, None, config_dir=tmp_path))
    shutil.copytree(tmp_path / "primary", tmp_path / "offsite")

    state = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    now = datetime.now(UTC)
    request = file_request(
        state,
        config,
        settings,
        NewRequest(
            partner="koga", tenant="goka", disaster_id="d", disaster_date=now.date(), basis="APPI-69-2-3",
            purposes=("EVACUEE_IDENTIFICATION",), fields=("name", "birth_date", "sex", "address"),
            scope=Scope(all_areas=True), requested_by="koga-yamada",
        ),
        now,
        config_dir=tmp_path,
    )  # fmt: skip
    assert request.estimate is not None and request.estimate["rows"] + request.estimate["excluded_protected"] == 188
    decide(state, config, settings, request.id, approver="goka-suzuki", secret=APPROVER_SECRETS["goka-suzuki"],
           approve=True, reason="", now=now)  # fmt: skip
    result = build_export(state, config, settings, request.id, tmp_path / "out", now=now, config_dir=tmp_path)
    assert result.rows + result.excluded_protected == 188
    open_bundle(result.bundle, tmp_path / "koga.key", load_verify_key(verify_key),
                tmp_path / "opened", now)  # fmt: skip
    persons = read_csv(tmp_path / "opened" / "persons.csv")
    assert len(persons) == result.rows
    assert all(len(p["birth_date"]) == 10 and p["birth_date"][4] == "-" for p in persons)  # date objects → ISO
    with psycopg.connect(postgres.dsn()) as conn:
        leftovers = conn.execute("select datname from pg_database where datname like 'bcpctl_export_%'").fetchall()
    assert leftovers == [], "the scratch database holding every 個人番号 must be dropped"


def test_audit_chain_on_a_postgresql_control_database(postgres: PostgresServer) -> None:
    """Concurrent appends from two controllers sharing one PostgreSQL control DB keep one chain."""
    from tests.victim_support.test_audit import append_concurrently

    append_concurrently(postgres.create_database("bcpctl_control_audit"), 20)
