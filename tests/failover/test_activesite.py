"""The active site from the run records, and which copies protect it (no servers needed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.config import load_config
from dc.errors import ConfigError
from dc.state import open_state
from failover.activesite import active_site, resolve_active, second_copy_sites, serving_config
from failover.protection import read_copies
from failover.records import RunRecord, finish_run, start_run
from failover.settings import drill_settings
from replication.ledger import Ledger
from replication.records import SystemLag
from storage.url import repository_url_key

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"
T0 = datetime(2026, 11, 28, 6, 12, tzinfo=UTC)


def _config():  # type: ignore[no-untyped-def]
    return load_config(EXAMPLE)[0]


def _run(kind: str, finished: datetime, target: str | None = None) -> RunRecord:
    return RunRecord(
        f"{kind}-{finished:%H%M}", kind, "execute", "passed", "primary", target, finished, finished,
        "host", 1, None, None, None, None, None,
    )  # fmt: skip


def test_the_primary_serves_until_a_failover_and_again_after_a_failback() -> None:
    config = _config()
    normal = resolve_active(config, None, None)
    assert (normal.site, normal.failed_over, normal.since, normal.second_copy) == ("primary", False, None, ("offsite",))
    over = resolve_active(config, _run("failover", T0, "offsite"), None)
    assert (over.site, over.failed_over, over.since, over.run_id) == ("offsite", True, T0, "failover-0612")
    assert over.second_copy == ("primary",)  # the rebuilt primary, when nothing else is configured
    back = resolve_active(config, _run("failback", T0 + timedelta(days=3)), None)
    assert (back.site, back.failed_over, back.since) == ("primary", False, T0 + timedelta(days=3))


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.sampled_from(["primary", "offsite", "third", None]), st.sampled_from(["primary", "offsite", "third"]))
def test_the_second_copy_never_goes_to_the_site_it_protects(chosen: str | None, active: str) -> None:
    raw = _config().model_dump()
    raw["sites"]["third"] = {**raw["sites"]["offsite"], "name": "third"}
    from dc.config import Consortium

    config = Consortium.model_validate(raw)
    sites = second_copy_sites(config, active, chosen)
    assert sites and active not in sites and set(sites) <= set(config.sites)
    if active != "primary" and chosen not in (None, active):
        assert sites == (chosen,)


def test_a_failover_to_a_site_the_configuration_no_longer_names_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="site 'gone', which the configuration does not name"):
        resolve_active(_config(), _run("failover", T0, "gone"), None)


def test_second_copy_must_name_a_site() -> None:
    config = _config()
    bad = config.model_copy(update={"drills": {**config.drills, "failover": {"second_copy": "mars"}}})
    with pytest.raises(ConfigError, match=re.escape("drills.failover.second_copy: unknown site 'mars'")):
        drill_settings(bad, "bcpctl.yaml")


def test_while_failed_over_sources_are_where_production_runs(tmp_path: Path) -> None:
    config = _config()
    over = resolve_active(config, _run("failover", T0, "offsite"), None)
    serving = serving_config(config, over, tmp_path)
    naka = serving.systems["naka-juki"]
    assert naka.source.dsn == config.systems["naka-juki"].restore_dsn
    goka = serving.systems["goka-juki"]  # SQLite: the file under its own name in the restore directory
    assert goka.source.path == f"{config.systems['goka-juki'].restore_dir}/juki.sqlite"
    assert serving.systems["kasumigaura-gaiji"].source.path == config.systems["kasumigaura-gaiji"].restore_dir
    assert serving_config(config, resolve_active(config, None, None), tmp_path) is config


def test_only_copies_replicated_from_the_active_site_since_it_took_over_protect_it(tmp_path: Path) -> None:
    config = _config()
    state = open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True)
    start_run(state, "fo-1", kind="failover", mode="execute", consortium="c", site="primary",
              declared_at=T0, deadline=None, target_site="offsite")  # fmt: skip
    finish_run(state, "fo-1", status="passed", error=None, document={})
    active = active_site(config, state)
    assert active.site == "offsite" and active.since is not None
    primary = repository_url_key(config.sites["primary"].repository)
    offsite = repository_url_key(config.sites["offsite"].repository)
    ledger = Ledger(state)
    newest = active.since - timedelta(minutes=1)
    # the primary's last copy before the disaster, shipped to the offsite: where production runs now
    ledger.record_lag(
        primary, offsite, [SystemLag("goka-juki", newest, newest, 0.0)], active.since - timedelta(hours=1)
    )
    # a reverse replication measured before the takeover: not a copy of what runs now
    ledger.record_lag(
        offsite, primary, [SystemLag("naka-juki", newest, newest, 0.0)], active.since - timedelta(hours=1)
    )
    assert read_copies(state, config, active) == {}
    later = active.since + timedelta(minutes=5)
    ledger.record_lag(offsite, primary, [SystemLag("naka-juki", later, later, 0.0)], later)
    copies = read_copies(state, config, active)
    assert list(copies) == ["naka-juki"] and copies["naka-juki"][0].site == "primary"
