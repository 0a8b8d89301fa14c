"""registry import --layout chukan-std: verified first, written in one transaction, 外字 reported."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcpctl.demo.consortium import demo_config, write_config
from tests.conftest import Cli
from victim_support.chukan import import_registry, kojin_bango_ok, mapping, wareki
from victim_support.schema import open_registry

M = mapping("chukan-std")
RESIDENT_COLUMNS = [i["column"] for i in M["files"]["residents"]["items"]]
CHANGE_COLUMNS = [i["column"] for i in M["files"]["changes"]["items"]]
SURNAMES = ["佐藤", "鈴木", "髙橋", "𠮷田", "渡邊", "小林"]  # 髙 and 𠮷 are outside JIS X 0208


def _kojin_bango(rng: random.Random) -> str:
    body = f"{rng.randrange(10**11):011d}"
    return next(body + str(d) for d in range(10) if kojin_bango_ok(body + str(d)))


def write_files(directory: Path, people: int, seed: int = 1) -> Path:
    """A seeded synthetic export in the mapping's layout: residents, their 転入, and the counts."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    residents, changes = [], []
    for i in range(people):
        atena = f"{i + 1:015d}"
        row = dict.fromkeys(RESIDENT_COLUMNS, "")
        row.update(
            宛名番号=atena, 世帯番号=f"{i // 3 + 1:015d}", 氏=rng.choice(SURNAMES), 名="太郎", 氏フリガナ="サトウ",
            名フリガナ="タロウ", 生年月日=f"03{rng.randint(20, 63):02d}0{rng.randint(1, 9)}1{rng.randint(0, 9)}",
            性別=rng.choice("12"), 続柄="世帯主" if i % 3 == 0 else rng.choice(["妻", "子"]),
            住民となった年月日="04010401",
            町字ID="0001001", 町字="大字小福田", 番地=f"{rng.randint(1, 2000)}", 郵便番号="3060392",
            住民票コード=f"{rng.randrange(10**11):011d}", 個人番号=_kojin_bango(rng),
        )  # fmt: skip
        residents.append(row)
        changes.append({"宛名番号": atena, "異動事由": "転入", "異動日": "04010401"})
    for name, columns, rows in (("JUMIN.csv", RESIDENT_COLUMNS, residents), ("IDOU.csv", CHANGE_COLUMNS, changes)):
        with (directory / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
    (directory / "COUNT.csv").write_text(f"file,records\nJUMIN.csv,{people}\nIDOU.csv,{people}\n", encoding="utf-8")
    return directory


def _edit(directory: Path, name: str, line: int, column: str, value: str) -> None:
    path = directory / name
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[line - 2][column] = value
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return conn.execute("SELECT count(*) FROM residents").fetchone()[0] if "residents" in tables else 0


def test_a_good_export_is_imported_with_every_gaiji_listed(tmp_path: Path) -> None:
    files = write_files(tmp_path / "export", 60)
    db = tmp_path / "registry.sqlite"
    report = import_registry(open_registry(str(db)), "goka", "085421", files)
    assert report.imported and report.residents == _count(db) == 60
    assert report.counts == {"JUMIN.csv": {"declared": 60, "found": 60}, "IDOU.csv": {"declared": 60, "found": 60}}
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT family_name FROM residents")}
        assert ("085421",) in conn.execute("SELECT value FROM registry_info WHERE key = 'lg_code'").fetchall()
    listed = {(g["record"], g["chars"][0][0]) for g in report.gaiji}
    assert {"髙橋", "𠮷田"} <= names and all(ch in {"髙", "𠮷"} for _, ch in listed)
    assert len(listed) == sum(n in ("髙橋", "𠮷田") for n in _column(files, "氏")), "every such record is listed"
    assert report.ja()[0].endswith("完了")


def _column(directory: Path, column: str) -> list[str]:
    with (directory / "JUMIN.csv").open(encoding="utf-8", newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


BROKEN = [
    ("COUNT.csv", None, None, None, "declared 61"),
    ("JUMIN.csv", 5, "続柄", "いとこ", "not in the zokugara table"),
    ("JUMIN.csv", 7, "生年月日", "04310501", "outside 平成"),
    ("JUMIN.csv", 7, "生年月日", "03640108", "outside 昭和"),
    ("JUMIN.csv", 8, "生年月日", "03480230", "day is out of range"),
    ("JUMIN.csv", 9, "生年月日", "09480401", "unknown 年号コード"),
    # the 既存住基システム改造仕様書's 1-digit 年号コード in a layout export: named, never misread
    ("JUMIN.csv", 9, "生年月日", "3480401", "1-digit 年号コード; this layout's is 2 digits"),
    ("IDOU.csv", 4, "異動日", "4010401", "1-digit 年号コード"),
    ("JUMIN.csv", 9, "住民となった年月日", "040104011", "is not 年号コード+YYMMDD (8 digits)"),
    ("JUMIN.csv", 3, "個人番号", "123456789010", "check digit"),
    ("JUMIN.csv", 4, "性別", "3", "not in the sex table"),
    ("JUMIN.csv", 6, "宛名番号", "000000000000001", "listed twice"),
    ("IDOU.csv", 2, "異動事由", "引越し", "not in the idou table"),
    ("IDOU.csv", 3, "宛名番号", "999999999999999", "no such resident"),
]


@pytest.mark.parametrize(("name", "line", "column", "value", "message"), BROKEN)
def test_a_broken_export_is_refused_whole_and_nothing_is_written(
    tmp_path: Path, name: str, line: int | None, column: str | None, value: str | None, message: str
) -> None:
    files = write_files(tmp_path / "export", 60)
    if line is None:
        (files / "COUNT.csv").write_text("file,records\nJUMIN.csv,61\nIDOU.csv,60\n", encoding="utf-8")
    else:
        _edit(files, name, line, column or "", value or "")
    db = tmp_path / "registry.sqlite"
    report = import_registry(open_registry(str(db)), "goka", "085421", files)
    assert not report.imported and _count(db) == 0
    assert any(message in p.message for p in report.problems), report.problems
    assert "何も書き込んでいません" in report.ja()[0]


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.integers(2, 41), st.sampled_from(["生年月日", "住民となった年月日", "続柄", "性別", "個人番号", "宛名番号"]))
def test_any_required_field_emptied_anywhere_is_refused(line: int, column: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(Path(tmp) / "export", 40, seed=line)
        _edit(files, "JUMIN.csv", line, column, "")
        db = Path(tmp) / "registry.sqlite"
        report = import_registry(open_registry(str(db)), "goka", "085421", files)
        assert not report.imported and _count(db) == 0
        assert [(p.record, p.field) for p in report.problems] == [(line, column)] or column == "宛名番号"


def test_wareki_eras_meet_at_the_kaigen_days() -> None:
    eras = M["eras"]
    assert M["era_code_digits"] == 2 and all(len(code) == 2 for code in eras), "利活用ガイド §2.1(2)イ: 2 digits"
    assert wareki("03640107", eras).isoformat() == "1989-01-07"
    assert wareki("04010108", eras).isoformat() == "1989-01-08"
    assert wareki("04310430", eras).isoformat() == "2019-04-30" and wareki("05010501", eras).isoformat() == "2019-05-01"
    for bad in ("04010107", "03640108", "05010430", "01050101", "03000101", "3640107", "4010108", "0401010８"):
        with pytest.raises(ValueError):
            wareki(bad, eras)


def test_the_mapping_says_what_it_cites_and_what_it_could_not_verify() -> None:
    assert M["version"] is None and M["eras_verified"] is False
    assert all(item["item"] is None for spec in M["files"].values() for item in spec["items"]), "no 項番 invented"
    assert any("§2.1(2)イ" in s["establishes"] for s in M["sources"])
    assert all(s["url"].startswith(("https://", "http://www.soumu.go.jp/")) for s in M["sources"])


def _config(tmp_path: Path) -> Path:
    raw = demo_config(tmp_path, "representative")
    raw["exports"].pop("tenants", None)
    config = tmp_path / "bcpctl.yaml"
    write_config(config, raw)
    return config


def test_cli_imports_with_a_japanese_report(cli: Cli, tmp_path: Path) -> None:
    config, files = _config(tmp_path), write_files(tmp_path / "export", 30)
    done = cli("registry", "import", "--config", str(config), "--tenant", "goka", "--file", str(files))
    assert done.returncode == 0, done.stderr
    assert "完了" in done.stdout and "外字・JIS X 0208外" in done.stdout and "取り込んだ住民: 30 人" in done.stdout
    assert _count(tmp_path / "primary" / "systems" / "goka-juki.sqlite") == 30
    again = cli("registry", "import", "--config", str(config), "--tenant", "goka", "--file", str(files))
    assert again.returncode == 1 and "not empty" in again.stderr
    assert _count(tmp_path / "primary" / "systems" / "goka-juki.sqlite") == 30


def test_cli_broken_export_exits_1_and_a_crash_mid_write_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    config, files = _config(tmp_path), write_files(tmp_path / "export", 2500)
    db = tmp_path / "primary" / "systems" / "goka-juki.sqlite"
    crashed = cli(
        "registry", "import", "--config", str(config), "--tenant", "goka", "--file", str(files),
        env={"BCPCTL_FAILPOINTS": "registry-import-mid"},
    )  # fmt: skip
    assert crashed.returncode != 0 and _count(db) == 0, "killed after the first 1000 rows: none of them kept"
    _edit(files, "JUMIN.csv", 10, "続柄", "いとこ")
    broken = cli("registry", "import", "--config", str(config), "--tenant", "goka", "--file", str(files), "--json")
    assert broken.returncode == 1 and _count(db) == 0
    data = json.loads(broken.stdout)
    assert data["imported"] is False and data["problems"][0]["record"] == 10
