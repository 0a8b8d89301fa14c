"""The real ``bcpctl`` against real S3 (Ceph RGW) and SFTP (sshd): replicate, verify, manifest, repository commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dc.state import open_state
from replication.ledger import Ledger
from tests.replication import primary
from tests.servers.storage import LOCKED_BUCKET, s3_url, sftp_url


def ok(done) -> dict:  # type: ignore[no-untyped-def]
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip().startswith(("{", "[")) else {}


def one_line_error(done, code: int) -> str:  # type: ignore[no-untyped-def]
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bcpctl: error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def signed_primary(tmp_path: Path, cli) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    repo = tmp_path / "primary"
    data = primary.write_tree(tmp_path / "data", files=6)
    ok(cli("repo", "init", "--repo", str(repo)))
    ok(cli("backup", "run", "--repo", str(repo), "--source", f"path:{data}", "--system", "goka-juki"))
    signed = ok(cli("manifest", "sign", "--repo", str(repo), "--json"))
    assert signed["snapshots"] == 1 and len(signed["public_key"]) == 64
    return str(repo), data


@pytest.mark.s3
@pytest.mark.sshd
def test_replicate_to_s3_and_sftp_then_verify_without_any_key(signed_primary, cli, ceph, sshd_server, tmp_path):  # type: ignore[no-untyped-def]
    repo, _ = signed_primary
    env = {
        **ceph.env(),
        "BCPCTL_KNOWN_HOSTS": str(sshd_server.known_hosts),
        "BCPCTL_SSH_KEY": str(sshd_server.client_key),
        "BCPCTL_PASSWORD": "",
    }
    for target in (s3_url(ceph), sftp_url(sshd_server, tmp_path / "offsite")):
        run = ok(cli("replicate", "--from", repo, "--to", target, "--verify", "--json", "--jobs", "3", env=env))
        assert run["ok"] and run["runs"][0]["signed"] and run["runs"][0]["objects_copied"] > 5
        assert run["runs"][0]["bytes_sent"] == sum(p.stat().st_size for p in Path(repo).rglob("*") if p.is_file())
        report = ok(cli("verify-offsite", "--repo", target, "--json", env=env))
        assert report["ok"] and report["pinned"] and report["snapshots_signed"] == 1
    shown = ok(cli("manifest", "show", "--repo", target, "--json", env=env))
    assert shown["sequence"] == run["runs"][0]["manifest_sequence"]
    again = ok(cli("replicate", "--from", repo, "--to", target, "--json", env=env))
    assert again["runs"][0]["objects_copied"] == 0


@pytest.mark.s3
@pytest.mark.sshd
def test_configured_sites_replicate_with_their_own_settings_and_record_lag(
    signed_primary, cli, ceph, sshd_server, tmp_path
):  # type: ignore[no-untyped-def]
    repo, _ = signed_primary
    config = {
        "consortium": "ibaraki-kikan",
        "sites": {
            "primary": {"prefecture": "茨城県", "role": "primary", "repository": repo},
            "hokkaido": {
                "prefecture": "北海道",
                "role": "offsite",
                "repository": sftp_url(sshd_server, tmp_path / "hokkaido"),
                "known_hosts": str(sshd_server.known_hosts),
            },
            "osaka": {
                "prefecture": "大阪府",
                "role": "offsite",
                "repository": s3_url(ceph, locked=True),
                "object_lock_days": 1,
            },
        },
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "systems": {
            "goka-juki": {
                "tenant": "goka",
                "business": "住民基本台帳",
                "tier": 1,
                "rpo": "15m",
                "source": {"kind": "path", "path": "/nonexistent"},
            },
        },
    }
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    env = {**ceph.env(), "BCPCTL_SSH_KEY": str(sshd_server.client_key), "BCPCTL_PASSWORD": ""}
    done = ok(cli("replicate", "--config", str(path), "--system", "goka-juki", "--json", env=env))
    assert [r["target"].split("://")[0] for r in done["runs"]] == ["sftp", "s3"]
    assert all(r["ok"] and [lag["system"] for lag in r["lag"]] == ["goka-juki"] for r in done["runs"])
    assert done["runs"][1]["locks_extended"] == 0
    lags = Ledger(open_state()).lag()
    assert [(lag.system, lag.lag_seconds) for lag in lags] == [("goka-juki", 0.0), ("goka-juki", 0.0)]
    client = ceph.client()
    key = done["runs"][1]["target"].split("?")[0].removeprefix(f"s3://{LOCKED_BUCKET}/") + "/config"
    assert client.head_object(Bucket=LOCKED_BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    unknown = cli("replicate", "--config", str(path), "--system", "nope", env=env)
    assert "unknown system 'nope'" in one_line_error(unknown, 2)


@pytest.mark.s3
@pytest.mark.sshd
def test_repository_commands_work_directly_on_s3_and_sftp(cli, ceph, sshd_server, tmp_path):  # type: ignore[no-untyped-def]
    data = primary.write_tree(tmp_path / "data", files=3)
    env = {
        **ceph.env(),
        "BCPCTL_KNOWN_HOSTS": str(sshd_server.known_hosts),
        "BCPCTL_SSH_KEY": str(sshd_server.client_key),
    }
    for url in (s3_url(ceph), sftp_url(sshd_server, tmp_path / "remote-repo")):
        ok(cli("repo", "init", "--repo", url, env=env))
        ok(cli("backup", "run", "--repo", url, "--source", f"path:{data}", env=env))
        snaps = ok(cli("snapshots", "--repo", url, "--json", env=env))
        assert len(snaps) == 1
        target = tmp_path / f"restored-{url[:2]}"
        ok(cli("restore", "latest", "--repo", url, "--target", str(target), env=env))
        assert sorted(p.name for p in target.rglob("*.bin")) == sorted(p.name for p in data.iterdir())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "give --from URL --to URL, or --config FILE"),
        (["--from", "/tmp/x"], "--from and --to go together"),
        (["--from", "/tmp/x", "--to", "/tmp/y", "--manifest-key", "xyz"], "64 lowercase hex"),
        (["--from", "/tmp/x", "--to", "/tmp/y", "--limit-rate", "fast"], "invalid rate"),
        (["--from", "/tmp/x", "--to", "/tmp/y", "--delete-delay", "soon"], "--delete-delay"),
        (["--from", "ftp://host/x", "--to", "/tmp/y"], "unsupported repository URL scheme"),
        (["--from", "sftp://u:pw@host/x", "--to", "/tmp/y"], "passwords do not belong"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(cli, tmp_path, args, needle) -> None:  # type: ignore[no-untyped-def]
    done = cli("replicate", *args)
    assert needle in one_line_error(done, 2)


def test_a_missing_source_repository_is_one_clear_line(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    done = cli("replicate", "--from", str(tmp_path / "empty"), "--to", str(tmp_path / "t"))
    assert "no bcpctl repository" in one_line_error(done, 2)
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())


def test_verify_offsite_finds_damage_and_replicate_repair_fixes_it(signed_primary, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = signed_primary
    offsite = tmp_path / "offsite"
    env = {"BCPCTL_PASSWORD": ""}  # nothing here needs the passphrase
    ok(cli("replicate", "--from", repo, "--to", str(offsite), env=env))
    pack = max((p for p in (offsite / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    pack.write_bytes(pack.read_bytes()[:-100])
    line = one_line_error(cli("verify-offsite", "--repo", str(offsite), env=env), 1)
    assert pack.name in line
    fixed = ok(cli("replicate", "--from", repo, "--to", str(offsite), "--repair", "--json", env=env))
    assert fixed["repaired"] == [str(pack.relative_to(offsite))]
    assert ok(cli("verify-offsite", "--repo", str(offsite), "--json", env=env))["ok"]
