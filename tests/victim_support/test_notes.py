"""The return loop on the real fixture: a partner's signed PFIF notes about people it received come back.

The notes name the person_record_ids of a real build's PFIF file, are signed with OpenSSH's
own ssh-keygen by the partner's registered key, and are read as the home town sees them:
where each person is and who said so, every note kept, conflicts shown. Unsigned, forged or
tampered notes are refused with nothing stored.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import Cli
from tests.victim_support import pfif_spec
from tests.victim_support.conftest import Site
from tests.victim_support.flow import approved_request, build, context
from tests.victim_support.test_build import open_all
from tests.victim_support.test_cli import one_line_error
from tests.victim_support.test_deliveries import _register_partner_key, ssh_keygen_sign
from tests.victim_support.test_prefiling import add_ledger
from victim_support.errors import NoteRejected, SignatureInvalid
from victim_support.notes import evacuee_notes, located_per_tenant, name_residents, receive_notes, whereabouts
from victim_support.pfifnote import Note, notes_document
from victim_support.pseudonym import Pseudonymizer

WHEN = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def received_ids(site: Site, tmp_path: Path) -> list[str]:
    """The person_record_ids of a real PFIF file koga received."""
    result = build(site, approved_request(site, formats=("pfif",)))
    files = open_all(site, result.bundle, tmp_path / "opened")
    return [p["person_record_id"] for p in pfif_spec.read(files["pfif.xml"])["persons"]]


def notes_for(ids: list[str], place: str = "古河市立古河第一小学校", start: int = 1) -> list[Note]:
    return [
        Note(f"city.koga.lg.jp/n{start + i}", pid, "古河市 避難所 鈴木", WHEN + timedelta(minutes=i), "本人と面会",
             author_made_contact=True, status="is_note_author", last_known_location=place)
        for i, pid in enumerate(ids)
    ]  # fmt: skip


def signed(tmp_path: Path, key: Path, notes: list[Note], name: str = "notes.xml") -> tuple[bytes, str]:
    path = tmp_path / name
    path.write_bytes(notes_document(notes))
    return path.read_bytes(), ssh_keygen_sign(key, path, "bcpctl-pfif-notes").read_text()


def send(site: Site, document: bytes, signature: str | None, partner: str = "koga") -> object:
    config, settings, state = context(site)
    return receive_notes(
        state, config, settings, partner=partner, document=document, signature=signature, now=datetime.now(UTC),
        via="cli",
    )  # fmt: skip


def stored(site: Site) -> int:
    _config, _settings, state = context(site)
    with state.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(evacuee_notes)).scalar_one())


def test_signed_notes_show_where_each_resident_is_and_who_said_so(site: Site, tmp_path: Path) -> None:
    key = _register_partner_key(site)
    ids = received_ids(site, tmp_path)[:3]
    document, signature = signed(tmp_path, key, notes_for(ids[:2]))
    result = send(site, document, signature)
    assert result.stored == 2 and result.tenants == {"goka": 2}  # type: ignore[attr-defined]
    assert send(site, document, signature).already_recorded == 2  # type: ignore[attr-defined]  # sent twice: harmless

    # another shelter reports one of them elsewhere: both notes are kept and the conflict is shown
    moved = [Note("city.koga.lg.jp/n99", ids[0], "古河市 山田", WHEN + timedelta(hours=5), "体育館へ移動",
                  status="believed_alive", last_known_location="古河市中央運動公園体育館")]  # fmt: skip
    send(site, *signed(tmp_path, key, moved, "moved.xml"))
    _config, _settings, state = context(site)
    people = {w.person_ref: w for w in whereabouts(state, "goka")}
    first, second = people[ids[0].split("/", 1)[1]], people[ids[1].split("/", 1)[1]]
    assert first.shelter == "古河市中央運動公園体育館" and first.said_by == "古河市 山田 (koga)"
    assert first.conflict and [h["note_record_id"] for h in first.history] == [
        "city.koga.lg.jp/n1",
        "city.koga.lg.jp/n99",
    ]
    assert second.shelter == "古河市立古河第一小学校" and not second.conflict
    assert located_per_tenant(state) == {"goka": 2}
    # the home town names them: the pseudonym recomputed from the replica with its own secret
    config, settings, _state = context(site)
    named = {w.person_ref: w.resident for w in name_residents(config, settings, "goka", list(people.values()),
                                                              config_dir=site.root)}  # fmt: skip
    registry = sqlite3.connect(site.registry)
    pz = Pseudonymizer((site.root / "goka.secret").read_text().strip().encode(), "082040")
    expected = {pz.person(a): f"{f}\u3000{g} ({m})" for a, f, g, m in registry.execute(
        "select atena_no, family_name, given_name, machiaza_name from residents where status='1'")}  # fmt: skip
    assert named == {ref: expected[ref] for ref in named} and all(named.values())
    # the 台帳 view: each person's damage entry of the disaster beside the shelter column
    entered = set(add_ledger(site, "2026-notes-eq", 1_000_000))
    disaster = "2026-notes-eq"
    ledger = {pz.person(a): {"damage": "全壊", "certificate": "交付済", "aid": ""} for a in entered}
    rows = name_residents(config, settings, "goka", list(people.values()), config_dir=site.root, disaster_id=disaster)
    assert {w.person_ref: w.ledger for w in rows} == {w.person_ref: ledger.get(w.person_ref, {}) for w in rows}
    assert any(w.ledger for w in rows)
    assert {w.person_ref: w.shelter for w in rows} == {w.person_ref: w.shelter for w in people.values()}


def test_unsigned_forged_or_tampered_notes_are_refused_and_nothing_is_stored(site: Site, tmp_path: Path) -> None:
    key = _register_partner_key(site)
    ids = received_ids(site, tmp_path)[:1]
    document, signature = signed(tmp_path, key, notes_for(ids))
    with pytest.raises(SignatureInvalid, match="not signed"):
        send(site, document, None)
    with pytest.raises(SignatureInvalid, match="registered key"):
        send(site, document.replace("本人と面会".encode(), "死亡を確認".encode()), signature)
    stranger = _register_partner_key(site, "tsukuba")  # a real key, but tsukuba's
    with pytest.raises(SignatureInvalid):
        send(site, *signed(tmp_path, stranger, notes_for(ids), "forged.xml"))
    with pytest.raises(SignatureInvalid):  # signed for another purpose (the deletion namespace)
        path = tmp_path / "other.xml"
        path.write_bytes(document)
        send(site, document, ssh_keygen_sign(key, path, "bcpctl-bundle-deletion").read_text())
    foreign = notes_for(["town.other.lg.jp/abc"])
    with pytest.raises(NoteRejected, match="not a record of ours"):
        send(site, *signed(tmp_path, key, foreign, "foreign.xml"))
    # tsukuba signs correctly, but received nobody of 五霞町: its notes are not about our residents
    tsukuba = _register_partner_key(site, "tsukuba")
    with pytest.raises(NoteRejected, match="has received no list and no lookup answer of 五霞町"):
        send(site, *signed(tmp_path, tsukuba, notes_for(ids), "unasked.xml"), partner="tsukuba")
    with pytest.raises(Exception, match="unknown partner"):
        send(site, document, signature, partner="nowhere")
    assert stored(site) == 0


def test_cli_return_and_whereabouts(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    key = _register_partner_key(site)
    ids = received_ids(site, tmp_path)[:1]
    path = tmp_path / "notes.xml"
    path.write_bytes(notes_document(notes_for(ids)))
    config = ("--config", str(site.config_path))
    env = {"BCPCTL_CONTROL_DB": f"sqlite:///{site.root / 'control.db'}"}  # where the list koga received was built
    one_line_error(
        cli("export", "return", "--partner", "koga", "--notes", str(path), *config, env=env), 3, "not signed"
    )
    ssh_keygen_sign(key, path, "bcpctl-pfif-notes")
    done = cli("export", "return", "--partner", "koga", "--notes", str(path), *config, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 1
    shown = cli("export", "whereabouts", "--tenant", "goka", *config, "--json", env=env)
    (person,) = json.loads(shown.stdout)
    assert person["shelter"] == "古河市立古河第一小学校" and person["said_by"].startswith("古河市 避難所 鈴木")
    assert person["resident"] == ""
    named = cli("export", "whereabouts", "--tenant", "goka", "--names", *config, "--json", env=env)
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)[0]["resident"].endswith(")")  # 氏　名 (町字)
    add_ledger(site, "2026-cli-eq", 1_000_000)
    ledger = cli("export", "whereabouts", "--tenant", "goka", "--names", "--disaster-id", "2026-cli-eq", *config,
                 "--json", env=env)  # fmt: skip
    assert ledger.returncode == 0, ledger.stderr
    (row,) = json.loads(ledger.stdout)
    assert row["ledger"] == {"damage": "全壊", "certificate": "交付済", "aid": ""}
    assert row["shelter"] == "古河市立古河第一小学校"
    one_line_error(
        cli("export", "whereabouts", "--tenant", "goka", "--disaster-id", "x", *config, env=env), 2, "needs --names"
    )
