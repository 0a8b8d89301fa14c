"""Surviving WAL that passes every check bcpctl can make and still cannot be replayed, and
surviving WAL on an object store: what was lost is stated either way, never a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from backup.walseq import parse_segment, segment_name
from failover.report_html import render_html
from storage.url import open_backend
from tests.backup.walsite import SYSTEM, wal_site
from tests.conftest import PASSWORD, Cli
from tests.failover.documents import document
from tests.failover.lostsite import SECRET, Disaster, _archived
from tests.failover.test_lost_work import _listed
from tests.servers.ceph import CephServer
from tests.servers.postgres import _as_owner, _bin
from tests.servers.storage import s3_url

pytestmark = pytest.mark.postgres


def test_survivors_whose_replay_fails_are_a_warning_and_the_interval(tmp_path: Path) -> None:
    """The gap created a tablespace on the primary's disk, gone with it: every survivor is this
    cluster's, on its timeline, whole, and PostgreSQL still stops replaying them with an error."""
    env = {k: v for k, v in os.environ.items() if k not in ("BCPCTL_CONTROL_DB", "BCPCTL_CONFIG", "BCPCTL_REPO")}
    env |= {"BCPCTL_CACHE_DIR": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")}
    env["BCPCTL_PASSWORD"] = PASSWORD
    with wal_site(env) as site:
        site.sql("CREATE TABLE idou (id serial PRIMARY KEY, lg_code text, name text, kojin_bango text)")
        raw = yaml.safe_load(site.config.read_text(encoding="utf-8"))
        raw["systems"][SYSTEM]["smoke"] = "SELECT count(*) FROM idou"
        raw["systems"][SYSTEM]["reentry"] = {"idou": {"business": "住民基本台帳 異動", "fields": ["id", "name"]}}
        site.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        cli = Cli(site.relay.env)
        assert cli("backup", "run", "--config", str(site.config)).returncode == 0
        site.sql("INSERT INTO idou (lg_code, name) VALUES ('085421', '既')")  # the offsite's last transaction
        _archived(site)
        site.sql("ALTER SYSTEM SET archive_command = 'false'")
        site.sql("SELECT pg_reload_conf()")
        space = Path(tempfile.mkdtemp(prefix="bcpctl-space-"))
        try:
            if site.cluster.owner:
                shutil.chown(space, site.cluster.owner)
            with psycopg.connect(site.cluster.dsn(), autocommit=True) as conn:
                conn.execute("INSERT INTO idou (lg_code, name, kojin_bango) VALUES ('085421', '失', %s)", (SECRET,))
                conn.execute(f"CREATE TABLESPACE lostspace LOCATION '{space}'")
                conn.execute("CREATE TABLE later (id int) TABLESPACE lostspace")
                conn.execute("SELECT pg_switch_wal()")
            survivors = tmp_path / "pg_wal"
            shutil.copytree(site.cluster.datadir / "pg_wal", survivors)
            subprocess.run(
                _as_owner(
                    [_bin("pg_ctl"), "-D", str(site.cluster.datadir), "-m", "immediate", "stop"], site.cluster.owner
                ),
                capture_output=True,
            )
        finally:
            shutil.rmtree(space)  # the primary's disk, lost with it
        declared = "2026-12-06T21:00:00+09:00"
        base = ["failover", "lost", SYSTEM, "--config", str(site.config), "--surviving-wal", str(survivors)]
        done = cli(*base, "--json", "--declared-at", declared)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert any("could not be replayed" in w for w in doc["warnings"]), doc["warnings"]
        assert doc["survived_lsn"] is None and doc["rows"] == [] and doc["recovered_to"]
        assert doc["declared_at"] == declared
        human = cli(*base, "--declared-at", declared)
        assert human.returncode == 0, human.stderr
        # the lost-work list is Japanese for the towns whatever the operator's locale
        assert "すべて失われました" in human.stdout
        assert "再生できませんでした" in human.stdout and "残存するWALはありません" not in human.stdout
        assert doc["unreplayed"] > 0
        html = render_html(document(datetime.now(UTC)) | {"mode": "execute", "lost": {SYSTEM: doc}}, {})
        assert "surviving WAL not replayable" in html and "no surviving WAL" not in html
        assert SECRET not in done.stdout + human.stdout + human.stderr
        assert "internal error" not in human.stderr


@pytest.mark.s3
def test_survivors_in_an_s3_bucket(disaster: Disaster, ceph: CephServer, s3_env: dict[str, str]) -> None:
    url = s3_url(ceph)
    bucket = open_backend(url)
    for name in disaster.segments:
        bucket.save(name, (disaster.survivors / "pg_wal" / name).read_bytes())
    after = segment_name(1, parse_segment(disaster.segments[-1]).segno + 1)
    bucket.save(after, b"\0" * 100)  # cut short on its way to the bucket
    bucket.save("nested/" + disaster.segments[0], b"not read")
    bucket.close()
    done, doc = disaster.lost(url, env=s3_env)
    assert _listed(doc) == set().union(*disaster.rows)
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in doc["skipped"]}
    assert "truncated: 100 bytes" in reasons[after]
    secret = s3_env["AWS_SECRET_ACCESS_KEY"]
    assert secret not in done.stdout and secret not in done.stderr
    wrong = s3_url(ceph, bucket="bcpctl-nosuch-bucket")
    done, doc = disaster.lost(wrong, env=s3_env)
    assert doc["survived_lsn"] is None and any("unreadable" in s["reason"] for s in doc["skipped"]), doc["skipped"]
