"""``registry import --layout chukan-std``: a joining town's 住民基本台帳 from its vendor's migration files.

Which column is which lives in a data file (victim_support/data/chukan_std_juki.yaml), with the
law each item answers to and the layout version it was checked against. Import verifies first,
writes after: every file's record count against the declared count, every code against its
table (性別, 続柄, 異動事由), every 和暦 date against its era's first and last day, every 個人番号
against its check digit, every change against a resident. A file with any such problem is
refused whole. Characters outside JIS X 0208 (外字, usually in the private-use area) are imported
as they are and listed per record, never dropped or replaced: a name must come through intact.
The rows are written in one transaction, so a failed import leaves the registry as it was.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func, insert, select

from dc.errors import N_, Message, library_reason
from dc.failpoint import failpoint
from victim_support.errors import RegistryError
from victim_support.schema import STATUS_RESIDENT, create_registry, registry_info, residents

LAYOUTS = ("chukan-std",)
#: a migration file bigger than this is not a town's registry
MAX_FILE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Problem:
    file: str
    record: int
    field: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    tenant: str
    layout: str
    version: str | None
    imported: bool
    #: file -> {declared, found}
    counts: dict[str, dict[str, int | None]]
    problems: list[Problem]
    #: characters outside JIS X 0208 per record: file, record, field, the characters
    gaiji: list[dict[str, Any]] = field(default_factory=list)
    residents: int = 0

    def ja(self, shown: Callable[[str], str] = str) -> list[str]:
        """The report in Japanese, one line each; ``shown`` puts a problem's marked English line in
        Japanese (the CLI's catalog, which the core cannot import)."""
        lines = [
            f"住民基本台帳 取込み({self.layout}, 版: {self.version or '項番未確認'}): "
            + ("完了" if self.imported else "中止 — 何も書き込んでいません")
        ]
        for name, c in self.counts.items():
            lines.append(
                f"  {name}: 申告 {c['declared'] if c['declared'] is not None else '—'} 件, 実件数 {c['found']} 件"
            )
        lines += [f"  誤り {p.file} {p.record}行目 {p.field}: {shown(p.message)}" for p in self.problems]
        lines += [
            f"  外字・JIS X 0208外 {g['file']} {g['record']}行目 {g['field']}: {' '.join(g['chars'])}"
            for g in self.gaiji
        ]
        if self.imported:
            lines.append(f"  取り込んだ住民: {self.residents} 人")
        if self.version is None:
            lines.append(
                "  注意: 項番・年号コード値・続柄/異動事由コードは中間標準レイアウト仕様で未確認"
                "(年号コード2桁のみ確認済み; 出典は victim_support/data/chukan_std_juki.yaml の sources)"
            )
        return lines


@cache
def mapping(layout: str) -> dict[str, Any]:
    if layout not in LAYOUTS:
        raise RegistryError(
            N_("unknown layout '{layout}' (known: {LAYOUTS})"), layout=layout, LAYOUTS=", ".join(LAYOUTS)
        )
    text = resources.files("victim_support").joinpath("data/chukan_std_juki.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def outside_jis_x_0208(text: str) -> list[str]:
    """The characters of ``text`` that JIS X 0208 (with ASCII) cannot write: 外字 and the like."""
    found = []
    for ch in text:
        try:
            ch.encode("iso2022_jp")
        except UnicodeEncodeError:
            found.append(f"{ch}(U+{ord(ch):04X})")
    return found


def wareki(value: str, eras: dict[str, Any], digits: int = 2) -> date:
    """年号コード (``digits`` wide: 2 in the layout) + YYMMDD → a date, inside its era; ValueError says why not.

    A date one digit short with a known 1-digit code is named as such: the 既存住基システム改造仕様書
    writes the 年号コード in 1 digit, the layout in 2 (利活用ガイド §2.1(2)イ), and a vendor's export
    mixing them must be refused, not misread.
    """
    width = digits + 6
    ascii_digits = value.isascii() and value.isdigit()  # str.isdigit() alone takes ８ and ٨
    if len(value) != width or not ascii_digits:
        if len(value) == width - 1 and ascii_digits and value[0].zfill(digits) in eras:
            raise ValueError(f"'{value}' has a 1-digit 年号コード; this layout's is {digits} digits")
        raise ValueError(f"'{value}' is not 年号コード+YYMMDD ({width} digits)")
    code = value[:digits]
    era = eras.get(code)
    if era is None:
        raise ValueError(f"unknown 年号コード '{code}'")
    year, month, day = int(value[digits : digits + 2]), int(value[digits + 2 : digits + 4]), int(value[digits + 4 :])
    if year == 0:
        raise ValueError(f"{era['name']}0年 does not exist")
    when = date(era["offset"] + year, month, day)  # ValueError for 2月30日 and the like
    first, last = date.fromisoformat(era["first"]), date.fromisoformat(era["last"]) if era["last"] else None
    if when < first or (last is not None and when > last):
        raise ValueError(f"{era['name']}{year}年{month}月{day}日 is outside {era['name']}")
    return when


def kojin_bango_ok(number: str) -> bool:
    """番号法施行令8条: the 12th digit from the first 11, weights 2..7 then 2..6 from the right."""
    if len(number) != 12 or not number.isdigit():
        return False
    digits = [int(d) for d in number[:11]][::-1]
    total = sum(p * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(digits, 1))
    remainder = total % 11
    return int(number[11]) == (0 if remainder <= 1 else 11 - remainder)


def _read(directory: Path, name: str, encoding: str) -> list[dict[str, str]]:
    path = directory / name
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise RegistryError(N_("{path}: larger than any town's registry"), path=path)
        with path.open(encoding=encoding, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise RegistryError(N_("{path}: missing (the layout's {name})"), path=path, name=name) from None
    except UnicodeDecodeError as exc:
        raise RegistryError(
            N_("{path}: not {encoding} at byte {start}"), path=path, encoding=encoding, start=exc.start
        ) from None
    except (OSError, csv.Error) as exc:
        raise RegistryError(N_("{path}: cannot read: {exc}"), path=path, exc=library_reason(exc)) from None


def _check_record(spec: dict[str, Any], m: dict[str, Any], name: str, number: int, row: dict[str, str],
                  problems: list[Problem], gaiji: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for item in spec["items"]:
        value = (row.get(item["column"]) or "").strip()
        if item["column"] not in row:
            problems.append(Problem(name, number, item["column"], Message(N_("column missing"))))
            continue
        if not value:
            if item["required"]:
                problems.append(Problem(name, number, item["column"], Message(N_("required, empty"))))
            out[item["field"]] = ""
            continue
        if chars := outside_jis_x_0208(value):
            gaiji.append({"file": name, "record": number, "field": item["column"], "chars": chars})
        kind, table = item.get("type"), item.get("codes")
        try:
            if kind == "wareki":
                out[item["field"]] = wareki(value, m["eras"], m["era_code_digits"])
                continue
            if kind == "kojin_bango" and not kojin_bango_ok(value):
                raise ValueError("check digit wrong (番号法施行令8条)")
            if table and value not in m["codes"][table]:
                raise ValueError(f"'{value}' is not in the {table} table")
        except ValueError as exc:
            problems.append(Problem(name, number, item["column"], str(exc)))
            continue
        out[item["field"]] = value
    return out


def import_registry(
    engine: Engine, tenant: str, lg_code: str, directory: Path, layout: str = "chukan-std"
) -> ImportReport:
    """Verify the files in ``directory``, then write them into the registry ``engine`` in one transaction."""
    m = mapping(layout)
    declared: dict[str, int] = {}
    for row in _read(directory, m["count_file"], m["encoding"]):
        try:
            declared[row["file"]] = int(row["records"])
        except (KeyError, ValueError):
            raise RegistryError(
                N_("{directory}: rows must be file,records"), directory=directory / m["count_file"]
            ) from None
    problems: list[Problem] = []
    gaiji: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int | None]] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for key, spec in m["files"].items():
        rows = _read(directory, spec["file"], m["encoding"])
        counts[spec["file"]] = {"declared": declared.get(spec["file"]), "found": len(rows)}
        if declared.get(spec["file"]) != len(rows):
            problems.append(
                Problem(
                    spec["file"],
                    0,
                    "件数",
                    Message(N_("declared {value}, found {count}"), value=declared.get(spec["file"]), count=len(rows)),
                )
            )
        records[key] = [_check_record(spec, m, spec["file"], i, row, problems, gaiji) for i, row in enumerate(rows, 2)]
    known = {r.get("atena_no") for r in records["residents"]}
    seen: set[str] = set()
    for i, r in enumerate(records["residents"], 2):
        if r.get("atena_no") in seen:
            problems.append(Problem(m["files"]["residents"]["file"], i, "宛名番号", Message(N_("listed twice"))))
        seen.add(r.get("atena_no", ""))
    for i, c in enumerate(records["changes"], 2):
        if c.get("atena_no") not in known:
            problems.append(Problem(m["files"]["changes"]["file"], i, "宛名番号", Message(N_("no such resident"))))
    report = ImportReport(tenant, layout, m["version"], False, counts, problems, gaiji)
    if problems:
        return report
    rows = [_resident(r) for r in records["residents"]]
    with engine.begin() as conn:
        create_registry(conn)
        if conn.execute(select(func.count()).select_from(residents)).scalar():
            raise RegistryError(
                N_("the registry of {tenant} is not empty: import fills a new town's registry only"), tenant=tenant
            )
        for start in range(0, len(rows), 1000):
            conn.execute(insert(residents), rows[start : start + 1000])
            failpoint("registry-import-mid")
        conn.execute(insert(registry_info), [{"key": "lg_code", "value": lg_code}, {"key": "source", "value": layout}])
    return ImportReport(tenant, layout, m["version"], True, counts, [], gaiji, len(rows))


def _resident(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: r.get(k, "") for k in ("atena_no", "setai_no", "family_name", "given_name", "family_name_kana",
                                      "given_name_kana", "sex", "relationship", "machiaza_id", "machiaza_name",
                                      "banchi", "katagaki", "postal_code", "juminhyo_code", "kojin_bango", "honseki")},
        "birth_date": r["birth_date"],
        "resident_since": r["resident_since"],
        "kana_verified": False,
        "status": STATUS_RESIDENT,
    }  # fmt: skip
