"""The control plane survives the disaster it manages: shipped with replication, opened first at failover.

Each test builds a small consortium whose two sites keep their control state in their own
directories (``sites.<name>.control_db``), runs the real ``bcpctl`` in subprocesses for
shipping (SIGKILLed where a fault is asked) and removes the whole primary directory before
failing over, as the disaster does.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dc.audit import read_entries, verify_log
from dc.config import load_config
from dc.continuation import PROMOTED
from dc.errors import BcpError
from dc.state import open_state
from failover.context import RunContext
from failover.control_copies import check_database
from failover.control_sqlite import SqliteShipping
from failover.controlplane import PromotionOrder, measured_rpo
from failover.errors import FailoverRefused
from failover.failover import FailoverRequest, execute_failover
from failover.hooks import HookResult
from failover.records import active_failover, list_runs
from tests.conftest import Cli
from tests.failover.sites import build_sites, enroll, fail_over, lose_the_primary, ok, ship


def test_failover_opens_the_shipped_control_state_first_and_the_chain_continues(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    shipped = ok(ship(sites, cli))
    assert shipped["problems"] == [] and shipped["newest"]["offsite"]["time"] == shipped["copy"]["time"]
    # After the last shipment the primary keeps working: this enrolment never reaches the offsite.
    late = tmp_path / "late-secret"
    ok(cli(*enroll(sites, "late-kacho"), "--secret-file", str(late), "--generate"))
    recovered = tmp_path / "recovered-primary.db"  # the primary's disk, found later in the rubble
    with sqlite3.connect(sites.primary / "control.db") as src, sqlite3.connect(recovered) as dst:
        src.backup(dst)
    lose_the_primary(sites)

    doc = ok(fail_over(sites, cli))
    assert doc["status"] == "passed" and not sites.primary.exists(), "nothing recreated the lost primary"
    control = doc["control_plane"]
    assert control["source"] == "restored" and control["site"] == "offsite"
    assert control["received_seq"] == 2 and control["copy"]["snapshot"]
    copy_time = datetime.fromisoformat(control["copy"]["time"])
    assert control["rpo_seconds"] == measured_rpo(copy_time, datetime.fromisoformat(doc["declared_at"])) > 0
    assert "entries after seq 2 at primary" in control["lost"]

    offsite = open_state(f"sqlite:///{sites.offsite / 'control.db'}")
    entries = read_entries(offsite)
    assert [e.action for e in entries][:3] == ["approver.enrolled", "approver.enrolled", PROMOTED]
    assert entries[2].action == PROMOTED and entries[2].prev_hash == entries[1].hash and entries[2].subject == doc["id"]
    assert verify_log(offsite).ok
    assert active_failover(offsite) is not None and [r.kind for r in list_runs(offsite)] == ["failover"]

    # audit verify at the offsite passes across the failover and states the gap, never silently.
    verified = cli("audit", "verify", "--config", str(sites.config_path), "--json", env=sites.offsite_env())
    report = ok(verified)
    (gap,) = report["failovers"]
    assert report["first_bad_seq"] is None and gap["received_seq"] == 2 and gap["lost"] is None
    assert gap["statement"].startswith("entries after seq 2 at primary") and "control-plane RPO =" in gap["statement"]
    human = cli("audit", "verify", "--config", str(sites.config_path), env=sites.offsite_env())
    assert human.returncode == 0 and "entries after seq 2 at primary" in human.stdout
    # With the primary's chain recovered, the lost entry is named.
    compared = ok(
        cli(
            "audit", "verify", "--config", str(sites.config_path), "--recovered", f"sqlite:///{recovered}", "--json",
            env=sites.offsite_env(),
        )
    )  # fmt: skip
    (gap,) = compared["failovers"]
    assert [(e["seq"], e["action"], e["subject"]) for e in gap["lost"]] == [(3, "approver.enrolled", "late-kacho")]
    assert gap["statement"].startswith("1 entry after seq 2 at primary") and gap["problem"] is None

    # The failover's reports carry the measured control-plane RPO: JSON, HTML and Japanese.
    folder = Path(doc["reports"]["html"]).parent
    assert (
        json.loads((folder / "report.json").read_text("utf-8"))["control_plane"]["rpo_seconds"]
        == control["rpo_seconds"]
    )
    html = (folder / "report.html").read_text("utf-8")
    assert "制御状態 Control state" in html and "entries after seq 2 at primary" in html
    ja = (folder / "report-ja-goka.txt").read_text("utf-8")
    assert "制御状態のデータ損失（RPO）実績" in ja and "第2件より後に主センターで記録された内容は不明です" in ja

    # And the metrics at the offsite: the measured RPO, and no copy age for the site that is live now.
    from monitoring.metrics import build_registry
    from monitoring.provider import SourceContext

    config, _ = load_config(sites.config_path)
    value = build_registry(SourceContext(offsite, config.at_site("offsite"))).get_sample_value
    assert value("bcp_control_plane_failover_rpo_seconds", {"site": "offsite"}) == control["rpo_seconds"]
    assert value("bcp_control_plane_rpo_seconds") == 600
    assert value("bcp_control_plane_copy_age_seconds", {"site": "offsite"}) is None


def test_the_copy_age_is_a_metric_at_the_primary_and_the_status_says_within_rpo(cli: Cli, tmp_path: Path) -> None:
    from monitoring.metrics import build_registry
    from monitoring.provider import SourceContext

    sites = build_sites(tmp_path / "c", cli)
    status = cli("control", "status", "--config", str(sites.config_path), "--json")
    assert status.returncode == 1 and "older than its RPO" in status.stderr  # nothing shipped yet
    ok(ship(sites, cli))
    doc = ok(cli("control", "status", "--config", str(sites.config_path), "--json"))
    (offsite,) = doc["sites"]
    assert doc["rpo_seconds"] == 600 and offsite["within_rpo"] and 0 <= offsite["age_seconds"] < 600
    config, _ = load_config(sites.config_path)
    value = build_registry(SourceContext(open_state(config.control_db), config)).get_sample_value
    age = value("bcp_control_plane_copy_age_seconds", {"site": "offsite"})
    assert age is not None and 0 <= age < 60
    assert value("bcp_control_plane_failover_rpo_seconds", {"site": "offsite"}) is None


def _flip_middle_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["pack", "snapshot", "truncated-pack"])
def test_a_damaged_newest_copy_is_skipped_and_the_lost_interval_named(cli: Cli, tmp_path: Path, damage: str) -> None:
    sites = build_sites(tmp_path / "c", cli)
    first = ok(ship(sites, cli))["copy"]
    packs, snapshots = sites.objects("data"), sites.objects("snapshots")
    ok(cli(*enroll(sites, "third-kacho"), "--secret-file", str(tmp_path / "s3"), "--generate"))
    second = ok(ship(sites, cli))["copy"]
    new_packs, new_snapshots = sites.objects("data") - packs, sites.objects("snapshots") - snapshots
    assert new_packs and len(new_snapshots) == 1
    for pack in new_packs:
        if damage == "truncated-pack":
            pack.write_bytes(pack.read_bytes()[: pack.stat().st_size // 2])
        elif damage == "pack":
            _flip_middle_byte(pack)
    if damage == "snapshot":
        _flip_middle_byte(next(iter(new_snapshots)))
    lose_the_primary(sites)

    doc = ok(fail_over(sites, cli))
    control = doc["control_plane"]
    assert control["source"] == "restored" and control["copy"]["snapshot"] == first["snapshot_id"]
    assert [s["snapshot"] for s in control["skipped"]] == [second["snapshot_id"]]
    assert control["skipped"][0]["time"] == second["time"]
    warning = next(w for w in doc["warnings"] if "does not verify" in w)
    assert "control changes between" in warning and "are lost with it" in warning
    # the interval is named in JST: from the copy used to the damaged one
    from dc.clock import JST

    for stamp in (first["time"], second["time"]):
        assert datetime.fromisoformat(stamp).astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST") in warning
    assert control["received_seq"] == 2, "the state of the first copy: the third enrolment is lost"
    assert verify_log(open_state(f"sqlite:///{sites.offsite / 'control.db'}")).ok


def test_a_control_database_that_fails_its_checks_is_refused(tmp_path: Path) -> None:
    """The class of damage a copy can carry: a wrong hash, a file that is not SQLite, a corrupt page."""
    good = tmp_path / "good.db"
    with sqlite3.connect(good) as conn:
        conn.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 300) for i in range(2000)])
    import hashlib

    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    check_database(good, digest, {"t": 2000})
    with pytest.raises(BcpError, match="SHA-256"):
        check_database(good, "0" * 64, {"t": 2000})
    with pytest.raises(BcpError, match="has 2000 rows, the copy recorded 1999"):
        check_database(good, digest, {"t": 1999})
    text = tmp_path / "text.db"
    text.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BcpError, match="does not open as SQLite"):
        check_database(text, hashlib.sha256(text.read_bytes()).hexdigest(), {})
    broken = tmp_path / "broken.db"
    raw = bytearray(good.read_bytes())
    page = 4096
    raw[page * 5 : page * 5 + 64] = b"\xff" * 64  # a b-tree page's header
    broken.write_bytes(bytes(raw))
    with pytest.raises(BcpError, match=r"integrity_check|does not open|rows"):
        check_database(broken, hashlib.sha256(bytes(raw)).hexdigest(), {"t": 2000})


class FencingHooks:
    """A fence result chosen by the test; every call recorded."""

    def __init__(self, fence: dict[str, str]) -> None:
        self.hosts = fence
        self.calls: list[tuple[str, str]] = []

    def _result(self, action: str, site: str, hosts: dict[str, str]) -> HookResult:
        self.calls.append((action, site))
        return HookResult(action, site, all(s in ("ok", "changed") for s in hosts.values()), f"{action} {site}", hosts)

    def fence(self, site: str, run_id: str) -> HookResult:
        return self._result("fence", site, self.hosts)

    def promote(self, site: str, run_id: str) -> HookResult:
        return self._result("promote", site, {"o-lb": "changed"})

    def failback(self, site: str, run_id: str) -> HookResult:
        return self._result("failback", site, {"p-db": "changed"})

    def unfence(self, site: str, run_id: str) -> HookResult:
        return self._result("unfence", site, {"o-lb": "changed"})


@pytest.mark.parametrize("planned", [False, True])
def test_promotion_is_refused_while_the_primary_answers_and_is_not_fenced(
    cli: Cli, tmp_path: Path, planned: bool
) -> None:
    sites = build_sites(tmp_path / "c", cli)
    ok(ship(sites, cli))
    config, path = load_config(sites.config_path)
    hooks = FencingHooks({"p-db": "failed", "p-lb": "unreachable"})
    # a disaster failover runs at the offsite; a planned switchover from the primary's controller
    ctx = RunContext.create(config if planned else config.at_site("offsite"), path)
    with pytest.raises(FailoverRefused) as refused:
        execute_failover(
            ctx, FailoverRequest("offsite", confirmed=True, planned=planned), hooks=hooks, handle_signals=False
        )
    message = refused.value.message
    assert refused.value.exit_code == 1
    assert message.startswith("primary still answers and is not fenced (fence primary)")
    assert "the control state at offsite was not promoted and nothing was restored" in message
    assert not (sites.offsite / "control.db").exists() and not (sites.offsite / "live").exists()
    assert hooks.calls == [("fence", "primary")] + ([("failback", "primary")] if planned else [])
    # the primary's own state is untouched and records no failover
    assert list_runs(open_state(config.control_db)) == []
    # A dead primary (every host unreachable) is what a disaster looks like: that failover proceeds.
    lose_the_primary(sites)
    dead = FencingHooks({"p-db": "unreachable", "p-lb": "unreachable"})
    ctx = RunContext.create(config.at_site("offsite"), path)
    over = execute_failover(ctx, FailoverRequest("offsite", confirmed=True), hooks=dead, handle_signals=False)
    assert over.status == "passed" and over.control_plane and over.control_plane["source"] == "restored"
    assert any("unreachable (site down?)" in w for w in over.warnings)


def test_a_failover_run_again_keeps_the_control_state_it_promoted(cli: Cli, tmp_path: Path) -> None:
    """Refused before the fence: nothing promoted. Failed after the promotion and run again: the
    promoted state, with the first attempt's record, is kept, and the chain has one gap."""
    from dc.continuation import failover_gaps

    sites = build_sites(tmp_path / "c", cli)
    ok(ship(sites, cli))
    lose_the_primary(sites)
    busy = sites.offsite / "live" / "goka-kokuho"
    busy.mkdir(parents=True)
    (busy / "leftover").write_text("stale")
    refused = fail_over(sites, cli)
    assert refused.returncode == 1 and "not an empty directory" in refused.stderr
    assert not (sites.offsite / "control.db").exists(), "refused before the fence: nothing promoted"
    shutil.rmtree(busy)

    config, path = load_config(sites.config_path)
    hooks = FencingHooks({"p-db": "unreachable"})
    hooks.promote = lambda site, run_id: HookResult("promote", site, False, "DNS update failed", {"o-lb": "failed"})  # type: ignore[method-assign]
    ctx = RunContext.create(config.at_site("offsite"), path)
    first = execute_failover(ctx, FailoverRequest("offsite", confirmed=True), hooks=hooks, handle_signals=False)
    assert first.status == "failed" and "DNS update failed" in (first.error or "")
    assert first.control_plane and first.control_plane["source"] == "restored"
    for system in config.systems:
        shutil.rmtree(sites.offsite / "live" / system)
    ctx = RunContext.create(config.at_site("offsite"), path)
    again = execute_failover(
        ctx, FailoverRequest("offsite", confirmed=True), hooks=FencingHooks({}), handle_signals=False
    )
    assert again.status == "passed" and again.control_plane and again.control_plane["source"] == "kept"
    assert again.control_plane["received_seq"] == first.control_plane["received_seq"]
    state = open_state(f"sqlite:///{sites.offsite / 'control.db'}")
    assert [(r.id, r.status) for r in list_runs(state)] == [(again.id, "passed"), (first.id, "failed")]
    entries = read_entries(state)
    assert [e.action for e in entries].count(PROMOTED) == 2 and verify_log(state).ok
    assert len(failover_gaps(entries)) == 1
    assert not list(sites.offsite.glob("control.db.before-promotion-*"))
    rerun = fail_over(sites, cli)
    assert rerun.returncode == 1 and "already failed over to 'offsite'" in rerun.stderr


def test_without_any_copy_the_failover_says_the_control_state_starts_empty(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    ok(cli("replicate", "--config", str(sites.config_path)))  # the systems ship, the control state never did
    lose_the_primary(sites)
    doc = ok(fail_over(sites, cli))
    control = doc["control_plane"]
    assert control["source"] == "empty" and control["rpo_seconds"] is None and control["copy"] is None
    assert any("the control state starts empty" in w for w in doc["warnings"])
    report = ok(cli("audit", "verify", "--config", str(sites.config_path), "--json", env=sites.offsite_env()))
    assert report["failovers"][0]["statement"].startswith("no control-state copy of primary reached offsite")


def test_each_site_has_its_own_control_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dc.config import parse_config
    from dc.errors import ConfigError

    raw = {
        "consortium": "c",
        "control_db": "sqlite:////srv/bcp/control.db",
        "sites": {
            "primary": {"prefecture": "茨城県", "repository": "/p"},
            "offsite": {"prefecture": "北海道", "role": "offsite", "repository": "/o", "control_db": "sqlite:////o.db"},
            "third": {"prefecture": "大阪府", "role": "offsite", "repository": "/t"},
        },
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
    }
    here = parse_config(raw)
    assert here.control_db == "sqlite:////srv/bcp/control.db"
    assert here.control_db_of("offsite") == "sqlite:////o.db" and here.control_db_of("third") == here.control_db
    monkeypatch.setenv("BCPCTL_SITE", "offsite")
    there = parse_config(raw)
    assert there.control_db == "sqlite:////o.db"
    assert there.control_db_of("primary") == "sqlite:////srv/bcp/control.db", "the other sites keep their own"
    monkeypatch.setenv("BCPCTL_SITE", "osaka")
    with pytest.raises(ConfigError, match="BCPCTL_SITE names unknown site 'osaka'"):
        parse_config(raw)
    monkeypatch.delenv("BCPCTL_SITE")
    raw["sites"]["offsite"]["control_db"] = "postgresql://bcp:secret@127.0.0.1/control"
    with pytest.raises(ConfigError, match="password"):
        parse_config(raw)


def test_a_copy_from_the_release_before_migrations_is_upgraded_when_promoted(cli: Cli, tmp_path: Path) -> None:
    """The primary ran an older bcpctl: its copy opens at the offsite at this bcpctl's schema, rows intact."""
    from backup.jobs import site_repository
    from dc import schema
    from dc.state import connect
    from replication.ledger import Ledger
    from replication.sync import replicate
    from storage.local import LocalBackend
    from tests.dc.previous_release import assert_preserved, create_as_deployed, fill

    sites = build_sites(tmp_path / "c", cli)
    live = sites.primary / "control.db"
    for leftover in sites.primary.glob("control.db*"):
        leftover.unlink()
    create_as_deployed(f"sqlite:///{live}")
    old = connect(f"sqlite:///{live}")
    filled = fill(old)
    old.dispose()
    config, path = load_config(sites.config_path)
    shipping = SqliteShipping(config, path.parent)
    copy, _added, _forgotten = shipping.take_copy(now=datetime.now(UTC))
    ledger = Ledger(open_state(f"sqlite:///{tmp_path / 'ledger.db'}", create=True))
    shipped = replicate(LocalBackend(sites.primary / "repo"), LocalBackend(sites.offsite / "repo", create=True), ledger)
    assert shipped.problem() is None
    lose_the_primary(sites)

    order = PromotionOrder(lambda: site_repository(config, "offsite", path.parent), datetime.now(UTC), "upgrade")
    promotion = shipping.promote("offsite", order)
    assert promotion.source == "restored" and promotion.copy and promotion.copy.snapshot_id == copy.snapshot_id
    assert (promotion.schema_before, promotion.schema_after) == (None, schema.head())
    promoted = open_state(promotion.url)
    assert_preserved(promoted, filled)
    assert verify_log(promoted).ok and promotion.received_seq == len(filled["audit_log"])
