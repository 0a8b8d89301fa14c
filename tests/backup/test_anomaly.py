"""Ransomware signals: a dataset encrypted in place shows as BackupAnomaly on its next backup,
and a normal day's changes do not."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from backup.anomaly import MIN_HISTORY, Signals, judge, signals_of
from dc.config import load_config
from dc.state import backup_runs, open_state
from monitoring.metrics import ControlDatabaseCollector
from monitoring.provider import SourceContext
from tests.conftest import Cli

SYSTEM = "goka-docs"
_WORDS = ["住民票", "転入", "転出", "世帯主", "五霞町", "小福田", "川妻", "令和8年", "異動届", "納付済"]


def _rows(rng: random.Random, n: int) -> str:
    return "".join(
        f"{rng.randrange(10**9):09d},{rng.choice(_WORDS)},{rng.choice(_WORDS)},{rng.randrange(100000)}\n"
        for _ in range(n)
    )


def _dataset(root: Path, rng: random.Random) -> None:
    for i in range(24):
        (root / f"records-{i:02d}.csv").write_text(_rows(rng, 2500), encoding="utf-8")


def _normal_day(root: Path, rng: random.Random) -> None:
    """A day's work: rows appended to a few ledgers, one new file."""
    for path in rng.sample(sorted(root.iterdir()), 3):
        with path.open("a", encoding="utf-8") as f:
            f.write(_rows(rng, 1500))
    (root / f"new-{rng.randrange(10**6)}.csv").write_text(_rows(rng, 1500), encoding="utf-8")


def _encrypt_in_place(root: Path) -> None:
    """What ransomware does: every file overwritten with its AES ciphertext, same name."""
    key, nonce = os.urandom(32), os.urandom(16)
    for path in sorted(root.iterdir()):
        enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
        path.write_bytes(enc.update(path.read_bytes()) + enc.finalize())


@pytest.fixture
def site(tmp_path: Path, cli: Cli) -> tuple[Path, Path]:
    data = tmp_path / "docs"
    data.mkdir()
    config = tmp_path / "bcpctl.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "consortium": "t",
                "control_db": f"sqlite:///{tmp_path / 'control.db'}",
                "sites": {"primary": {"prefecture": "茨城県", "repository": str(tmp_path / "repo")}},
                "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
                "systems": {
                    SYSTEM: {"tenant": "goka", "business": "文書管理", "tier": 2, "rpo": "1d", "rto": "1d",
                             "source": {"kind": "path", "path": str(data)}},
                },
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )  # fmt: skip
    assert cli("repo", "init", "--repo", str(tmp_path / "repo")).returncode == 0
    assert cli("db", "upgrade", "--config", str(config)).returncode == 0
    return data, config


def _backup(cli: Cli, config: Path) -> dict[str, Any]:
    done = cli("backup", "run", "--config", str(config), "--json")
    assert done.returncode == 0, done.stderr
    return {"row": json.loads(done.stdout)["backups"][0], "stderr": done.stderr}


def test_encryption_in_place_raises_backup_anomaly_and_normal_days_do_not(site: tuple[Path, Path], cli: Cli) -> None:
    data, config = site
    rng = random.Random(7)
    _dataset(data, rng)
    _backup(cli, config)
    for _ in range(MIN_HISTORY + 1):
        _normal_day(data, rng)
        normal = _backup(cli, config)
        assert normal["row"]["anomaly"] is None, normal["row"]
        assert "BackupAnomaly" not in normal["stderr"]
    before = normal["row"]["result"]["snapshot_id"]
    _encrypt_in_place(data)
    hit = _backup(cli, config)
    assert hit["row"]["anomaly"] and "compressibility" in hit["row"]["anomaly"]
    assert hit["row"]["last_known_good"] == before
    assert "BackupAnomaly" in hit["stderr"] and before[:8] in hit["stderr"]
    consortium, _ = load_config(config)
    engine = open_state(consortium.control_db)
    row = engine.connect().execute(select(backup_runs).order_by(backup_runs.c.id.desc())).first()
    assert row is not None and row.last_known_good == before and row.compressibility > 0.95
    registry = CollectorRegistry()
    registry.register(ControlDatabaseCollector(SourceContext(engine, consortium)))
    labels = {"site": "primary", "tenant": "goka", "system": SYSTEM}
    assert registry.get_sample_value("bcp_backup_anomaly", labels) == 1
    # the next normal day after the attack is judged against the history before it, not the attack
    _normal_day(data, rng)
    after = _backup(cli, config)
    assert after["row"]["anomaly"] is None
    fresh = CollectorRegistry()
    fresh.register(ControlDatabaseCollector(SourceContext(engine, consortium)))
    assert fresh.get_sample_value("bcp_backup_anomaly", labels) == 0


def _normal(c: float) -> Signals:
    return Signals(c, 0.05, 0.1)


def test_thresholds_are_learned_from_the_system_itself() -> None:
    # a scanned-forms archive never compresses: incompressible new data is its normal day
    scans = [Signals(0.99, 0.05, 0.05) for _ in range(10)]
    assert not judge(scans, Signals(1.0, 0.06, 0.06)).anomalous
    assert judge(scans, Signals(1.0, 0.9, 0.95)).anomalous is False  # cannot look less compressible than it is
    texts = [_normal(0.3 + i / 100) for i in range(10)]
    assert not judge(texts, _normal(0.35)).anomalous
    assert judge(texts, Signals(1.0, 0.95, 0.9)).anomalous
    # incompressible new data alone (one encrypted archive saved) is not mass encryption
    assert not judge(texts, Signals(1.0, 0.05, 0.1)).anomalous
    # too little history: nothing judged
    assert not judge(texts[: MIN_HISTORY - 1], Signals(1.0, 1.0, 1.0)).anomalous


def test_signals_need_enough_new_data() -> None:
    tiny = signals_of(raw_added=1000, stored_added=1000, bytes_total=10**6, files_changed=1, files_total=10)
    assert tiny.compressibility is None and tiny.new_fraction == 0.001 and tiny.changed_fraction == 0.1
    empty = signals_of(raw_added=0, stored_added=0, bytes_total=0, files_changed=0, files_total=0)
    assert empty == Signals(None, None, None)
