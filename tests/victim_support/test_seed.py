"""``registry seed``: where the registry is written, atomically, and never over a real database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from dc.config import load_config
from dc.errors import ConfigError, UsageError
from tests.victim_support.conftest import config_doc
from victim_support.schema import open_registry, registry_lg_code
from victim_support.seed import seed_registries, seed_target
from victim_support.settings import load_export_settings

RECIPIENT = "age18qjne9dpr29q7p4y94g8jfdlvxe6p74n3xkfsm7c0s0x4hsyyygqppyqax"


@pytest.fixture
def configured(tmp_path: Path):  # type: ignore[no-untyped-def]
    doc = config_doc(tmp_path, RECIPIENT)
    doc["tenants"]["naka"] = {"name": "那珂市", "lg_code": "082261", "population": 55986}  # type: ignore[index]
    doc["systems"]["naka-juki"] = {  # type: ignore[index]
        "tenant": "naka",
        "business": "住民基本台帳",
        "tier": 1,
        "source": {"kind": "postgres", "dsn": "postgresql://bcp@127.0.0.1:1/naka_juki"},
    }
    doc["systems"]["naka-files"] = {  # type: ignore[index]
        "tenant": "naka",
        "business": "外字",
        "tier": 3,
        "source": {"kind": "path", "path": "gaiji"},
    }
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    config = load_config(path)[0]
    return config, load_export_settings(config), tmp_path


def test_target_is_the_configured_sqlite_path_or_out(configured) -> None:  # type: ignore[no-untyped-def]
    config, settings, root = configured
    assert seed_target(config, settings, "goka", None, root) == str(root / "goka-juki.sqlite")
    assert seed_target(config, settings, "goka", root / "out", root) == str(root / "out" / "goka.sqlite")
    assert seed_target(config, settings, "naka", None, root).startswith("postgresql://")


def test_seeds_the_file_the_backup_reads(configured) -> None:  # type: ignore[no-untyped-def]
    config, settings, root = configured
    (result,) = seed_registries(config, settings, tenants=["goka"], scale=0.02, config_dir=root)
    assert result.target == str(root / "goka-juki.sqlite")
    assert result.counts.residents == round(9376 * 0.02)
    assert result.real_machiaza
    engine = open_registry(result.target, read_only=True)
    assert registry_lg_code(engine) == "085421"
    assert (root / "goka-juki.sqlite").stat().st_mode & 0o077 == 0  # resident data: owner only
    assert not list(root.glob(".goka-juki.sqlite.*"))  # no temporary file left behind


def test_reseeding_replaces_a_synthetic_registry(configured) -> None:  # type: ignore[no-untyped-def]
    config, settings, root = configured
    seed_registries(config, settings, tenants=["goka"], scale=0.01, config_dir=root)
    (again,) = seed_registries(config, settings, tenants=["goka"], scale=0.02, seed=3, config_dir=root)
    count = sqlite3.connect(root / "goka-juki.sqlite").execute("select count(*) from residents where status='1'")
    assert count.fetchone()[0] == again.counts.residents


def test_refuses_to_overwrite_a_database_that_is_not_synthetic(configured) -> None:  # type: ignore[no-untyped-def]
    config, settings, root = configured
    real = root / "goka-juki.sqlite"
    conn = sqlite3.connect(real)
    conn.execute("create table residents (atena_no text)")
    conn.execute("insert into residents values ('real person')")
    conn.commit()
    conn.close()
    before = real.read_bytes()
    with pytest.raises(UsageError, match="not a synthetic registry"):
        seed_registries(config, settings, tenants=["goka"], scale=0.01, config_dir=root)
    assert real.read_bytes() == before
    seed_registries(config, settings, tenants=["goka"], scale=0.01, config_dir=root, force=True)
    assert real.read_bytes() != before


def test_bad_arguments(configured) -> None:  # type: ignore[no-untyped-def]
    config, settings, root = configured
    with pytest.raises(UsageError, match="unknown tenant 'mito'"):
        seed_registries(config, settings, tenants=["mito"], config_dir=root)
    with pytest.raises(UsageError, match="--scale"):
        seed_registries(config, settings, tenants=["goka"], scale=0, config_dir=root)
    cfg = config.model_copy(update={"systems": {k: v for k, v in config.systems.items() if k != "naka-juki"}})
    with pytest.raises(ConfigError, match="0 住民基本台帳 systems"):
        seed_registries(cfg, settings, tenants=["naka"], config_dir=root)
    assert not (root / "goka-juki.sqlite").exists()


def test_several_tenants_are_seeded_in_parallel_processes(configured) -> None:  # type: ignore[no-untyped-def]
    config, settings, root = configured
    results = seed_registries(config, settings, scale=0.005, out=root / "out", config_dir=root)
    assert [r.tenant for r in results] == ["goka", "naka"]
    assert [r.counts.residents for r in results] == [47, 280]
    for result in results:
        assert registry_lg_code(open_registry(result.target, read_only=True)) == config.tenants[result.tenant].lg_code
