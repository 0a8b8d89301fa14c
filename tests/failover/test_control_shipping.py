"""Shipping the control state: a shipment killed anywhere leaves the previous copy usable, and
copies are kept for the control plane's RPO window.

Like tests/failover/test_control_plane.py, the consortium's two sites keep their control
state in their own directories and the real ``bcpctl`` ships in a subprocess, SIGKILLed at
the failpoint or moment the test picks.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dc.audit import verify_log
from dc.config import load_config
from dc.state import open_state
from failover.control_sqlite import SqliteShipping
from failover.controlplane import CONTROL_SYSTEM, PromotionOrder, copy_retention, within_rpo
from tests.conftest import Cli
from tests.failover.sites import Sites, build_sites, enroll, ok, ship

#: every place a shipment can die: taking the copy, writing it, between objects, before the manifest
FAILPOINTS = (
    "storage.save.mid-object",
    "backup.after-index",
    "control.copy.after-snapshot",
    "replicate.after-object-1",
    "replicate.before-manifest",
)


@pytest.mark.slow
def test_shipping_killed_at_any_point_leaves_the_previous_copy_usable(cli: Cli, tmp_path: Path) -> None:
    sites = build_sites(tmp_path / "c", cli)
    first = ok(ship(sites, cli))["copy"]
    config, path = load_config(sites.config_path)
    rng = random.Random(20260311)
    landed = 0
    kills = [("failpoint", point) for point in FAILPOINTS] + [
        ("signal", f"{rng.uniform(0.2, 2.5):.2f}") for _ in range(4)
    ]
    for i, (how, where) in enumerate(kills):
        # the control state changes between attempts, as a working primary's does
        ok(cli(*enroll(sites, f"kacho-{i}"), "--secret-file", str(tmp_path / f"s{i}"), "--generate"))
        if how == "failpoint":
            killed = ship(sites, cli, BCPCTL_FAILPOINTS=where)
            assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
        else:
            killed_at = _ship_and_kill(sites, cli, float(where))
            if killed_at is None:
                continue  # finished before the kill: a complete shipment is fine too
            landed += 1
        # The offsite as it is now: its newest copy that verifies is promoted into a scratch location.
        scratch = tmp_path / f"scratch-{i}" / "control.db"
        at = config.model_copy(
            update={
                "sites": {
                    **config.sites,
                    "offsite": config.sites["offsite"].model_copy(update={"control_db": f"sqlite:///{scratch}"}),
                }
            }
        )
        from functools import partial

        from backup.jobs import site_repository

        order = PromotionOrder(partial(site_repository, at, "offsite", path.parent), datetime.now(UTC), f"t{i}")
        promotion = SqliteShipping(at, path.parent).promote("offsite", order)
        assert promotion.source == "restored", (how, where, promotion.warnings)
        assert promotion.copy is not None and promotion.copy.time >= datetime.fromisoformat(first["time"])
        assert promotion.skipped == [], (how, where, promotion.skipped)
        assert promotion.received_seq >= 2 and verify_log(open_state(f"sqlite:///{scratch}")).ok
        # Keyless, the offsite's signed state is intact: at most the killed run's own snapshots wait
        # for the manifest the next run signs (replication/verify.py: "unsigned").
        verified = json.loads(cli("verify-offsite", "--repo", str(sites.offsite / "repo"), "--json").stdout)
        kinds = {p["kind"] for p in verified["problems"]}
        assert kinds <= {"unsigned"}, (how, where, verified["problems"])
    assert landed, "no kill at a random time landed during a shipment"
    # and the next shipment after all those kills completes, and the offsite verifies clean
    assert ok(ship(sites, cli))["problems"] == []
    assert ok(cli("verify-offsite", "--repo", str(sites.offsite / "repo"), "--json"))["problems"] == []


def _ship_and_kill(sites: Sites, cli: Cli, after: float) -> float | None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "control", "ship", "--config", str(sites.config_path)],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(after)
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return after


def test_copies_are_kept_for_the_rpo_window_plus_a_day_and_never_fewer_than_two() -> None:
    from backup.retention import Candidate, apply_policy
    from dc.config import parse_config

    raw = {
        "consortium": "c",
        "sites": {"p": {"prefecture": "茨城県", "repository": "/r"}},
        "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        "systems": {
            "a": {"tenant": "goka", "business": "b", "tier": 1, "rpo": "15m", "source": {"kind": "path", "path": "/"}},
            "b": {"tenant": "goka", "business": "b", "tier": 2, "rpo": "4h", "source": {"kind": "path", "path": "/"}},
        },
    }
    config = parse_config(raw)
    assert config.control_plane_rpo == 900  # the shortest system RPO
    policy = copy_retention(config)
    assert policy.within_seconds == 900 + 86400 and policy.last == 2
    now = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
    from datetime import timedelta

    hourly = [Candidate(f"s{i}", now - timedelta(hours=i), CONTROL_SYSTEM) for i in range(60)]
    kept = {d.id for d in apply_policy(hourly, policy, now=now) if d.keep}
    assert kept == {f"s{i}" for i in range(25)}  # 24 h 15 min back
    stale = [Candidate(f"s{i}", now - timedelta(days=30 + i), CONTROL_SYSTEM) for i in range(5)]
    assert {d.id for d in apply_policy(stale, policy, now=now) if d.keep} == {"s0", "s1"}
    assert within_rpo(now - timedelta(minutes=14), now, 900) and not within_rpo(now - timedelta(minutes=16), now, 900)
    assert not within_rpo(None, now, 900)
    raw["control_plane"] = {"rpo": "5m", "keep": "3d"}
    tight = parse_config(raw)
    assert tight.control_plane_rpo == 300 and copy_retention(tight).within_seconds == 3 * 86400
