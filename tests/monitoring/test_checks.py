"""Scheduled repository checks: the rolling read-data subset and recorded verdicts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from backup.check import in_subset
from backup.jobs import backup_systems, site_repository
from backup.opening import init_repository
from monitoring import checks
from monitoring.metrics import ControlDatabaseCollector
from monitoring.provider import SourceContext
from monitoring.schedule import JobSpec, interval_trigger
from monitoring.tasks import JobContext, JobFailed, check
from storage.url import open_backend
from tests.conftest import PASSWORD, Cli
from tests.monitoring.conftest import CHEAP_KDF, Lab, scrape, seed_sqlite


def test_next_subset_rotates_through_all_slices() -> None:
    assert checks.next_subset(None, 7) == (1, 7)
    seen, current = [], None
    for _ in range(8):
        current = checks.next_subset(current, 7)
        seen.append(current[0])
    assert seen == [1, 2, 3, 4, 5, 6, 7, 1]
    assert checks.next_subset((5, 7), 3) == (1, 3)  # the operator changed M
    with pytest.raises(ValueError):
        checks.next_subset(None, 0)


def _spec(site: str) -> JobSpec:
    return JobSpec(f"check:{site}", "check", interval_trigger(f"check:{site}", 60), 60, site=site)


@pytest.fixture
def populated(lab_factory: Callable[..., Lab]) -> Lab:
    systems = {f"sys-{i}": {"tenant": "goka"} for i in range(6)}
    lab = lab_factory(systems)
    config = lab.config
    for round_ in range(2):
        for system_id in systems:
            seed_sqlite(Path(lab.raw["systems"][system_id]["source"]["path"]), 10 + round_)
        with site_repository(config, "primary", lab.root) as repo:
            assert all(o.ok for o in backup_systems(config, repo, None, config_dir=lab.root))
    return lab


def test_m_scheduled_checks_read_every_pack_once(populated: Lab) -> None:
    engine = populated.engine()
    context = JobContext(engine, populated.config, populated.root, check_slices=3)
    results = [check(context, _spec("primary")) for _ in range(3)]
    assert [r.split(":")[0] for r in results] == ["slice 1/3", "slice 2/3", "slice 3/3"]
    (latest,) = checks.latest_checks(engine)
    assert latest.ok and latest.subset == (3, 3)
    with engine.connect() as conn:
        rows = conn.execute(select(checks.repository_checks)).all()
    assert sum(row.packs_read for row in rows) == latest.packs > 1
    assert checks.next_subset(checks.last_subset(engine, "primary"), 3) == (1, 3)


def test_a_damaged_pack_fails_the_check_and_the_metric(populated: Lab) -> None:
    engine = populated.engine()
    repo_root = Path(populated.raw["sites"]["primary"]["repository"])
    pack = sorted((repo_root / "data").rglob("*"))[-1]
    assert pack.is_file()
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    context = JobContext(engine, populated.config, populated.root, check_slices=1)
    with pytest.raises(JobFailed, match="check of site primary found"):
        check(context, _spec("primary"))
    (rec,) = checks.latest_checks(engine)
    assert not rec.ok and rec.problems >= 1 and pack.name in (rec.detail or "")
    registry = CollectorRegistry()
    registry.register(ControlDatabaseCollector(SourceContext(engine, populated.config)))
    assert registry.get_sample_value("bcp_repository_check_ok", {"site": "primary"}) == 0
    assert registry.get_sample_value("bcp_repository_check_problems", {"site": "primary"}) == rec.problems


def test_a_repository_that_cannot_be_opened_is_a_failed_check(populated: Lab) -> None:
    engine = populated.engine()
    context = JobContext(engine, populated.config, populated.root)
    with pytest.raises(JobFailed):
        check(context, _spec("offsite"))  # never initialised
    (rec,) = [r for r in checks.latest_checks(engine) if r.site == "offsite"]
    assert not rec.ok and rec.subset is None and "does not exist" in (rec.detail or "")


def test_a_cli_check_of_a_site_is_recorded_like_a_scheduled_one(populated: Lab, cli: Cli) -> None:
    engine = populated.engine()
    repo = populated.raw["sites"]["primary"]["repository"]
    config = str(populated.config_path)
    plain = cli("check", "--repo", repo, "--json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["recorded_site"] is None and checks.latest_checks(engine) == []

    context = JobContext(engine, populated.config, populated.root, check_slices=3)
    check(context, _spec("primary"))  # scheduled slice 1/3
    # The operator's slice must hold a pack, and pack names are random: this repository has
    # two, so any fixed slice is empty in one run of three or nine. Take a slice a pack is
    # in, other than the scheduler's 1/3 where one exists, so a rotation it moved would show.
    names = [info.key.rsplit("/", 1)[-1] for info in open_backend(repo).list("data/")]
    held = [k for k in (2, 3, 1) if any(in_subset(name, (k, 3)) for name in names)]
    assert held, names
    n = held[0]
    manual = cli("check", "--repo", repo, "--read-data", "--subset", f"{n}/3", "--config", config, "--json")
    assert manual.returncode == 0, manual.stderr
    shown = json.loads(manual.stdout)
    assert shown["recorded_site"] == "primary"
    (rec,) = checks.latest_checks(engine)
    assert rec.ok and rec.read_data and rec.bytes_read == shown["bytes_read"] > 0
    assert rec.packs_read == shown["packs_read"] and rec.snapshots == shown["snapshots"]
    # The operator's slice does not move the scheduler's rotation: next is still 2/3.
    assert checks.next_subset(checks.last_subset(engine, "primary"), 3) == (2, 3)
    value = scrape(populated, engine).get_sample_value
    assert value("bcp_repository_check_timestamp_seconds", {"site": "primary"}) == rec.finished_at.timestamp()
    assert value("bcp_repository_read_data_timestamp_seconds", {"site": "primary"}) == rec.finished_at.timestamp()

    # A structure-only check is the newest check, but not the newest read of the data.
    quick = cli("check", "--repo", repo, env={"BCPCTL_CONFIG": config})
    assert quick.returncode == 0, quick.stderr
    assert "recorded as the newest check of site primary" in quick.stdout
    (newest,) = checks.latest_checks(engine)
    assert newest.ok and not newest.read_data and newest.finished_at > rec.finished_at
    value = scrape(populated, engine).get_sample_value
    assert value("bcp_repository_check_timestamp_seconds", {"site": "primary"}) == newest.finished_at.timestamp()
    assert value("bcp_repository_check_read_bytes", {"site": "primary"}) == 0
    assert value("bcp_repository_read_data_timestamp_seconds", {"site": "primary"}) == rec.finished_at.timestamp()


def test_a_cli_check_records_damage_and_ignores_other_repositories(populated: Lab, cli: Cli, tmp_path: Path) -> None:
    engine = populated.engine()
    config = str(populated.config_path)
    other = tmp_path / "other-repo"
    init_repository(open_backend(str(other), create=True), PASSWORD, kdf=CHEAP_KDF)
    elsewhere = cli("check", "--repo", str(other), "--config", config)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "not a configured site's repository" in elsewhere.stdout and checks.latest_checks(engine) == []

    bad_config = cli(
        "check", "--repo", populated.raw["sites"]["primary"]["repository"], "--config", str(tmp_path / "no.yaml")
    )
    assert bad_config.returncode == 2 and len(bad_config.stderr.strip().splitlines()) == 1
    assert checks.latest_checks(engine) == []

    pack = sorted((Path(populated.raw["sites"]["primary"]["repository"]) / "data").rglob("*"))[-1]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    damaged = cli("check", "--repo", populated.raw["sites"]["primary"]["repository"], "--read-data", "--config", config)
    assert damaged.returncode == 1
    (rec,) = checks.latest_checks(engine)
    assert not rec.ok and rec.problems >= 1 and pack.name in (rec.detail or "")
    assert scrape(populated, engine).get_sample_value("bcp_repository_check_ok", {"site": "primary"}) == 0
