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

from backup.anomaly import MIN_HISTORY, MIN_TYPE_LOST_FILES, Signals, judge, signals_of
from bcpctl.demo.consortium import seed_files, seed_records
from dc.config import load_config
from dc.state import backup_runs, open_state
from monitoring.metrics import ControlDatabaseCollector
from monitoring.provider import SourceContext
from tests.backup.documents import MAKERS, encrypted
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


def _backup(cli: Cli, config: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = cli("backup", "run", "--config", str(config), "--json", env=env)
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


#: the office documents of the demo's file system: 4 of each kind the content says
_DOC_KINDS = ("pdf", "xlsx", "png", "gz", "zip", "db")


def _documents(root: Path, rng: random.Random) -> None:
    """The demo's file-tree system (forms, a scan archive of random bytes, a records table) with
    office documents beside it, and files whose names lie about their content."""
    seed_files(root / "forms", 40, rng, day=1)
    seed_records(root / "records.sqlite", 2000, rng, day=1)
    docs = root / "docs"
    docs.mkdir()
    for kind in _DOC_KINDS:
        for i in range(4):
            (docs / f"{kind}-{i}.{kind}").write_bytes(MAKERS[kind][0](rng))
    # hostile names: a PDF called .txt, a workbook called .png, random bytes called .pdf
    (docs / "notes.txt").write_bytes(MAKERS["pdf"][0](rng))
    (docs / "photo.png").write_bytes(MAKERS["xlsx"][0](rng))
    (docs / "report.pdf").write_bytes(rng.randbytes(64 * 1024))


def _office_day(root: Path, rng: random.Random, day: int) -> None:
    """A day's work: documents edited and saved again (same type, new content), new documents,
    new forms, the blob called report.pdf rewritten with new random bytes."""
    docs = root / "docs"
    for path in rng.sample(sorted(p for p in docs.iterdir() if p.stem[:-2] in _DOC_KINDS), 5):
        path.write_bytes(MAKERS[path.suffix[1:]][0](rng))
    (docs / f"new-{day}.pdf").write_bytes(MAKERS["pdf"][0](rng))
    (docs / f"new-{day}.xlsx").write_bytes(MAKERS["xlsx"][0](rng))
    (docs / "report.pdf").write_bytes(rng.randbytes(64 * 1024))
    seed_files(root / "forms", 40, rng, day=day)


def _encrypt_documents(root: Path) -> int:
    """Ransomware that keeps names and sizes and leaves everything but documents alone: every
    file under docs/ overwritten in place with its ciphertext. Returns how many had a known type."""
    known = 0
    for seed, path in enumerate(sorted((root / "docs").iterdir())):
        data = path.read_bytes()
        known += path.name != "report.pdf"
        with path.open("r+b") as f:
            f.write(encrypted(data, seed))
    return known


def test_documents_encrypted_in_place_raise_backup_anomaly_by_their_types(site: tuple[Path, Path], cli: Cli) -> None:
    data, config = site
    rng = random.Random(11)
    _documents(data, rng)
    _backup(cli, config)
    for day in range(2, MIN_HISTORY + 3):
        _office_day(data, rng, day)
        normal = _backup(cli, config)
        assert normal["row"]["anomaly"] is None, normal["row"]
        assert normal["row"]["result"]["files_typed"] >= 6
        assert normal["row"]["signals"]["type_lost"] == 0.0
    before = normal["row"]["result"]["snapshot_id"]
    lost = _encrypt_documents(data)
    hit = _backup(cli, config, env={"BCPCTL_LANG": "ja"})
    row = hit["row"]
    # content, not names: notes.txt (a PDF) and photo.png (a workbook) lost their types,
    # report.pdf (random bytes all along) had none to lose
    assert row["result"]["files_type_lost"] == lost == len(_DOC_KINDS) * 4 + 2 + 2 * (MIN_HISTORY + 1)
    assert lost >= MIN_TYPE_LOST_FILES
    assert row["signals"]["type_lost"] > 0.9
    assert row["anomaly"] and "type_lost" in row["anomaly"], row
    # office documents are compressed already and a day's new data is small: neither the bytes'
    # compressibility nor the shares of changed files or new data would have told
    assert not any(name in row["anomaly"] for name in ("compressibility", "new_fraction", "changed_fraction"))
    assert row["last_known_good"] == before
    # --json is the same in every language; the warning a person reads is in theirs
    assert "BackupAnomaly" in hit["stderr"] and "ファイルの種類（内容の形式）が失われた" in hit["stderr"]
    consortium, _ = load_config(config)
    engine = open_state(consortium.control_db)
    registry = CollectorRegistry()
    registry.register(ControlDatabaseCollector(SourceContext(engine, consortium)))
    labels = {"site": "primary", "tenant": "goka", "system": SYSTEM}
    assert registry.get_sample_value("bcp_backup_anomaly", labels) == 1
    ratio = registry.get_sample_value("bcp_backup_signal_ratio", labels | {"signal": "type_lost"})
    assert ratio is not None and ratio > 0.9
    stored = engine.connect().execute(select(backup_runs).order_by(backup_runs.c.id.desc())).first()
    assert stored is not None and stored.type_lost_fraction > 0.9


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


def test_lost_types_alone_need_many_files_and_a_learned_threshold() -> None:
    docs = [Signals(0.98, 0.05, 0.1, 0.0, 0) for _ in range(10)]
    many = Signals(0.99, 0.06, 0.12, 0.9, MIN_TYPE_LOST_FILES)
    verdict = judge(docs, many)
    assert verdict.anomalous and verdict.reason.startswith("type_lost 0.90 >")
    # a user who saved a few encrypted archives over documents is not mass encryption
    assert not judge(docs, Signals(0.99, 0.06, 0.12, 0.9, MIN_TYPE_LOST_FILES - 1)).anomalous
    # a system whose files turn into unknown data every day (an encrypting application) learns it
    sealed = [Signals(0.99, 0.05, 0.1, 0.95, 50) for _ in range(10)]
    assert not judge(sealed, Signals(0.99, 0.05, 0.1, 1.0, 60)).anomalous
    # snapshots from before types were recorded give no basis: nothing judged on types
    assert not judge([Signals(None, 0.05, 0.1) for _ in range(10)], many).anomalous
    counted = signals_of(
        raw_added=0, stored_added=0, bytes_total=10, files_changed=4, files_total=10, files_typed=4, files_type_lost=3
    )
    assert counted.type_lost == 0.75 and counted.files_type_lost == 3
