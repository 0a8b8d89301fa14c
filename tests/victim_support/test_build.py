"""Building from the replica: the primary can be gone, and nothing forbidden ever leaves."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from dc.errors import UsageError
from tests.victim_support import pfif_spec
from tests.victim_support.conftest import Site, write_identity
from tests.victim_support.flow import approved_request, build, context, deny, read_csv
from victim_support.bundle import open_bundle
from victim_support.charset import displayable
from victim_support.errors import PolicyRejected, RegistryError, RequestStateError
from victim_support.fields import FORBIDDEN_COLUMNS
from victim_support.pfif import MANDATORY, NAMESPACE
from victim_support.policy import Scope
from victim_support.pseudonym import Pseudonymizer
from victim_support.signing import load_verify_key

NEVER = ("kojin_bango", "juminhyo_code", "honseki", "kokuho_no", "kiso_nenkin_no", "atena_no", "setai_no")


def registry_rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn.execute("select * from residents where status = '1'").fetchall()


def pseudonyms(site: Site) -> Pseudonymizer:
    return Pseudonymizer((site.root / "goka.secret").read_text().strip().encode(), "082040")


def open_all(site: Site, bundle: Path, out: Path) -> dict[str, bytes]:
    open_bundle(bundle, site.partner_key, load_verify_key(site.verify_key), out, datetime.now(UTC))
    return {p.name: p.read_bytes() for p in out.iterdir()}


def xlsx_rows(data: bytes) -> list[tuple[object, ...]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [tuple("" if v is None else v for v in row) for row in book["名簿"].iter_rows(values_only=True)]


def assert_nothing_forbidden(files: dict[str, bytes], registry: list[sqlite3.Row]) -> None:
    """No forbidden column name and no forbidden value in any decrypted file."""
    for name, data in files.items():
        if name.endswith(".xlsx"):
            text = "\n".join(",".join(map(str, row)) for row in xlsx_rows(data))
        else:
            text = data.decode("cp932" if name.endswith("cp932.csv") else "utf-8-sig")
        header = text.splitlines()[0] if name.endswith((".csv", ".xlsx")) else ""
        assert not set(header.split(",")) & FORBIDDEN_COLUMNS, (name, header)
        if name == "pfif.xml":
            tags = {el.tag.split("}")[1] for el in ET.fromstring(data).iter()}
            assert not tags & FORBIDDEN_COLUMNS
        for column in NEVER:
            for row in registry:
                value = row[column]
                if value and len(value) >= 7:
                    assert value not in text, f"{column} value leaked into {name}"


def test_build_from_the_offsite_replica_with_the_primary_gone(site: Site, tmp_path: Path) -> None:
    request_id = approved_request(site)
    registry = registry_rows(site.registry)
    shutil.rmtree(site.primary)  # the primary data center is destroyed
    site.registry.unlink()  # and the live registry with it
    result = build(site, request_id)
    assert result.site == "offsite"
    assert result.replication_lag == "unknown"
    protected = [r for r in registry if r["shien_sochi"] or r["yokushi"]]
    assert protected, "the seed must contain protected rows for this test to mean anything"
    assert result.rows == len(registry) - len(protected)
    assert result.excluded_protected == len(protected)

    files = open_all(site, result.bundle, tmp_path / "opened")
    assert set(files) == {"manifest.json", "manifest.json.sig", "persons.csv", "persons-excel.csv",
                          "persons.xlsx", "persons-cp932.csv", "pfif.xml"}  # fmt: skip
    assert_nothing_forbidden(files, registry)
    manifest = json.loads(files["manifest.json"])
    assert manifest["replication_lag"] == "unknown" and manifest["replication_lag_seconds"] is None
    assert manifest["as_of"] == result.as_of.isoformat()
    assert manifest["counts"] == {"rows": result.rows, "excluded_protected": len(protected)}
    assert manifest["basis"]["law"] == "個人情報の保護に関する法律第69条第2項第3号"
    assert "個人情報の保護に関する法律" in files["manifest.json"].decode() and b"\\u" not in files["manifest.json"]

    persons = read_csv(tmp_path / "opened" / "persons.csv")
    pz = pseudonyms(site)
    refs = {p["person_ref"] for p in persons}
    assert len(refs) == len(persons)
    assert not refs & {pz.person(r["atena_no"]) for r in protected}, "a 支援措置/抑止 row left"
    assert refs == {pz.person(r["atena_no"]) for r in registry if not (r["shien_sochi"] or r["yokushi"])}
    assert files["persons-excel.csv"] == b"\xef\xbb\xbf" + files["persons.csv"]
    assert all(p["birth_date"][4] == "-" and len(p["birth_date"]) == 10 for p in persons)  # ISO 8601

    # The workbook holds the same rows: every identifier byte-identical as text, dates as dates.
    sheet = xlsx_rows(files["persons.xlsx"])
    assert list(sheet[0]) == [f["label"] for f in manifest["fields"]]
    keys = [f["key"] for f in manifest["fields"]]
    assert len(sheet) - 1 == len(persons)
    for person, row in zip(persons, sheet[1:], strict=True):
        got = dict(zip(keys, row, strict=True))
        assert got.pop("birth_date").date().isoformat() == person.pop("birth_date")  # type: ignore[attr-defined]
        assert got == person

    # Every row whose registered name CP932/JIS X 0213 cannot show has a fallback and is listed.
    hostile = {p["person_ref"] for p in persons if not displayable(p["name"])}
    assert hostile, "the seed must contain 外字 names"
    assert all(p["name_fallback"] for p in persons if p["person_ref"] in hostile)
    lossy = {row["person_ref"] for row in manifest["cp932_lossy_rows"]}
    assert {p["person_ref"] for p in persons if "name" in _lossy_fields(p)} <= lossy
    cp932 = {p["person_ref"]: p for p in read_csv(tmp_path / "opened" / "persons-cp932.csv", "cp932")}
    for ref in lossy:
        assert "〓" not in cp932[ref]["name"]

    root = ET.fromstring(files["pfif.xml"])
    assert root.tag == f"{{{NAMESPACE}}}pfif"
    people = root.findall(f"{{{NAMESPACE}}}person")
    assert len(people) == len(persons)
    for person in people[:50]:
        for field in MANDATORY:
            assert person.findtext(f"{{{NAMESPACE}}}{field}")
    # every record as a PFIF 1.4 reader written from the specification sees it: the tenant's domain, UTC …Z
    read = pfif_spec.read(files["pfif.xml"])["persons"]
    assert [p["person_record_id"] for p in read] == [f"town.goka.lg.jp/{p['person_ref']}" for p in persons]
    assert all(p["source_date"].endswith("Z") and p["expiry_date"].endswith("Z") for p in read)


def test_a_pfif_file_without_the_tenants_pfif_domain_is_refused_at_filing(site: Site) -> None:
    import yaml

    doc = yaml.safe_load(site.config_path.read_text())
    del doc["tenants"]["goka"]["pfif_domain"]
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(PolicyRejected, match=r"needs tenants\.goka\.pfif_domain"):
        approved_request(site, formats=("pfif",))
    approved_request(site, formats=("cp932",))  # without PFIF the domain is not needed


def _lossy_fields(row: dict[str, str]) -> list[str]:
    from victim_support.charset import cp932_text

    return [k for k, v in row.items() if cp932_text(v)[1]]


def test_the_age_cli_opens_the_payload(site: Site, tmp_path: Path) -> None:
    """The partner needs nothing of ours: age + tar, and sha256 against the manifest."""
    result = build(site, approved_request(site, formats=()))
    out = tmp_path / "age"
    out.mkdir()
    age = subprocess.run(
        ["age", "-d", "-i", site.partner_key, result.bundle / "payload.tar.age"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", out], input=age.stdout, check=True)
    manifest = json.loads((out / "manifest.json").read_bytes())
    import hashlib

    for name, meta in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == meta["sha256"]
    assert_nothing_forbidden({p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv",)},
                             registry_rows(site.registry))  # fmt: skip
    envelope = (result.bundle / "envelope.json").read_bytes()
    (tmp_path / "allowed").write_text(f"goka {site.verify_key}\n")
    checked = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", tmp_path / "allowed", "-I", "goka", "-n", "bcpctl-export",
         "-s", result.bundle / "envelope.json.sig"],
        input=envelope, capture_output=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_lag_is_measured_while_the_primary_is_reachable(site: Site) -> None:
    from backup.jobs import backup_systems, site_repository

    config, _settings, _state = context(site)
    with site_repository(config, "primary", site.root) as repo:
        assert all(o.ok for o in backup_systems(config, repo, None, config_dir=site.root))  # not yet replicated
    result = build(site, approved_request(site, formats=()))
    primary = build(site, approved_request(site, formats=()), site_name="primary")
    assert primary.replication_lag_seconds == 0 and primary.as_of > result.as_of
    assert result.replication_lag_seconds == (primary.as_of - result.as_of).total_seconds()


def test_support_only_list_under_49_11_3(site: Site, tmp_path: Path) -> None:
    request_id = approved_request(
        site,
        basis="DMA-49-11-3",
        purposes=("WELFARE_CHECK", "SAFETY_CONFIRMATION"),
        fields=("name", "birth_date", "sex", "address", "phone", "support_reason_code"),
        scope=Scope(all_areas=True, support_only=True),
        formats=(),
        approvers=("goka-suzuki",),
    )
    registry = registry_rows(site.registry)
    result = build(site, request_id)
    files = open_all(site, result.bundle, tmp_path / "o")
    assert_nothing_forbidden(files, registry)
    persons = read_csv(tmp_path / "o" / "persons.csv")
    pz = pseudonyms(site)
    wanted = {pz.person(r["atena_no"]) for r in registry if r["yoshiensha"] and not (r["shien_sochi"] or r["yokushi"])}
    assert {p["person_ref"] for p in persons} == wanted
    assert all(p["phone"] and p["support_reason_code"] for p in persons)
    assert "relationship" not in persons[0]


def test_damage_fields_come_from_the_disaster_ledger(site: Site, tmp_path: Path) -> None:
    from backup.jobs import backup_systems, site_repository

    conn = sqlite3.connect(site.registry)
    victims = [
        r[0] for r in conn.execute("select atena_no from residents where status='1' and not shien_sochi limit 5")
    ]
    conn.executemany(
        "insert into damage values (?, '2026-kanto-eq', '全壊', '交付済', '応急仮設住宅')", [(a,) for a in victims]
    )
    conn.execute("insert into damage values (?, 'older-flood', '半壊', '', '')", (victims[0],))
    conn.commit()
    conn.close()
    config, _settings, _state = context(site)
    with site_repository(config, "primary", site.root) as repo:
        backup_systems(config, repo, None, config_dir=site.root)
    shutil.rmtree(site.offsite)
    shutil.copytree(site.primary, site.offsite)
    request_id = approved_request(
        site,
        basis="DMA-90-4-1-3",
        purposes=("AID_DISTRIBUTION", "CERTIFICATE_APPLICATION_RELAY"),
        fields=("name", "address", "damage"),
        formats=(),
    )
    result = build(site, request_id)
    open_all(site, result.bundle, tmp_path / "o")
    persons = read_csv(tmp_path / "o" / "persons.csv")
    pz = pseudonyms(site)
    damaged = {pz.person(a) for a in victims}
    by_ref = {p["person_ref"]: p for p in persons}
    assert all(
        by_ref[ref]["damage_status"] == "全壊" and by_ref[ref]["aid_status"] == "応急仮設住宅" for ref in damaged
    )
    assert sum(1 for p in persons if p["damage_status"]) == len(victims)  # the other disaster's entry is not mixed in


def test_scope_by_machiaza_and_unknown_machiaza(site: Site, tmp_path: Path) -> None:
    registry = registry_rows(site.registry)
    result = build(site, approved_request(site, scope=Scope(areas=("大字川妻", "0001000")), formats=()))
    open_all(site, result.bundle, tmp_path / "o")
    persons = read_csv(tmp_path / "o" / "persons.csv")
    assert {p["machiaza_name"] for p in persons} <= {"大字川妻", "大字江川"}
    expected = [r for r in registry if r["machiaza_name"] in ("大字川妻", "大字江川")]
    assert result.rows + result.excluded_protected == len(expected)
    with pytest.raises(PolicyRejected, match=r"町字 not in the registry of 五霞町.*: 大字どこか"):  # refused at filing
        approved_request(site, scope=Scope(areas=("大字どこか",)), formats=())


def test_only_approved_requests_build(site: Site) -> None:
    pending = approved_request(site, approvers=("goka-suzuki",))
    with pytest.raises(RequestStateError, match=r"pending \(1 of 2 approvals\)"):
        build(site, pending)
    denied = approved_request(site, approvers=())
    deny(site, denied, "goka-tanaka", "範囲が広すぎる")
    with pytest.raises(RequestStateError, match="is denied"):
        build(site, denied)
    stale = approved_request(site, now=datetime.now(UTC) - timedelta(days=8))
    with pytest.raises(RequestStateError, match="is expired"):
        build(site, stale)
    assert not (site.root / "out").exists()


def test_the_escrow_recipient_can_open_too(site: Site, tmp_path: Path) -> None:
    import yaml

    escrow = write_identity(site.root / "goka-escrow.key")
    doc = yaml.safe_load(site.config_path.read_text())
    doc["exports"]["tenants"]["goka"]["escrow_recipient"] = escrow
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    result = build(site, approved_request(site, formats=()))
    opened = open_bundle(result.bundle, site.root / "goka-escrow.key", load_verify_key(site.verify_key),
                         tmp_path / "o", datetime.now(UTC))  # fmt: skip
    assert opened.envelope["recipients"][1] == escrow


def test_missing_keys_fail_before_any_data_is_read(site: Site) -> None:
    request_id = approved_request(site)
    (site.root / "goka-sign").unlink()
    shutil.rmtree(site.offsite)  # would fail differently if the build got that far
    with pytest.raises(UsageError, match="cannot read signing key file"):
        build(site, request_id)


def test_a_snapshot_of_another_municipality_is_refused(site: Site) -> None:
    from backup.jobs import backup_systems, site_repository

    conn = sqlite3.connect(site.registry)
    conn.execute("update registry_info set value = '082261' where key = 'lg_code'")
    conn.commit()
    conn.close()
    config, _settings, _state = context(site)
    with site_repository(config, "primary", site.root) as repo:
        backup_systems(config, repo, None, config_dir=site.root)
    with pytest.raises(RegistryError, match="holds the registry of 082261, not 085421"):
        build(site, approved_request(site), site_name="primary")


def test_no_bundle_survives_a_failed_audit(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from victim_support import audit

    request_id = approved_request(site, formats=())

    def broken(*_a, **_k):  # type: ignore[no-untyped-def]
        raise OSError("control database unavailable")

    monkeypatch.setattr(audit, "audited", broken)
    with pytest.raises(OSError, match="control database unavailable"):
        build(site, request_id)
    assert not any((site.root / "out").iterdir())


def test_a_registry_left_by_a_killed_build_is_removed(tmp_path: Path) -> None:
    import subprocess as sp

    from victim_support.replica import sweep_stale_restores

    child = sp.Popen(["sleep", "0"])
    child.wait()  # its pid is now free: the build that used it is gone
    stale = tmp_path / f"bcpctl-export-{child.pid}-abc"
    (stale / "restore").mkdir(parents=True)
    (stale / "restore" / "goka-juki.sqlite").write_text("every 個人番号")
    alive = tmp_path / f"bcpctl-export-{os.getpid()}-def"
    alive.mkdir()
    other = tmp_path / "bcpctl-export-notapid"
    other.mkdir()
    assert sweep_stale_restores(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and other.exists()
