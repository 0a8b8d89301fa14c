"""An attacker with SQL access to the control database cannot approve or widen an export.

The attacker here writes the control database directly (UPDATE / INSERT / DELETE), on SQLite
and on a real PostgreSQL, and may even rewrite the whole audit chain with correct hashes:
the chain has no key. What they cannot do is sign as an approver. Every edit of a request's
row must make ``export build`` refuse (exit 1, naming the request and what differs) before
any resident data is read, and make ``audit verify`` report the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select, text, update

from dc.audit import append, audit_log, read_entries
from dc.auditentry import entry_hash
from dc.state import open_state
from tests.servers.postgres import PostgresServer
from tests.victim_support.conftest import APPROVER_SECRETS, DISASTER_DATE, Site
from victim_support.build import build_export
from victim_support.decisions import decide
from victim_support.errors import RequestStateError, RequestTampered
from victim_support.integrity import verify_control_state
from victim_support.policy import Scope
from victim_support.prefiling import file_request
from victim_support.settings import load_export_settings
from victim_support.store import NewRequest, export_decisions, export_requests

#: one edit per column that changes what a build exports (column, new value as stored)
SPEC_EDITS: list[tuple[str, Any]] = [
    ("fields", json.dumps(["person_ref", "household_ref", "name", "name_fallback", "address", "phone"])),
    ("requested_fields", json.dumps(["name", "address", "phone"])),
    ("basis", "DMA-90-4-1-3"),
    ("purposes", json.dumps(["EVACUEE_IDENTIFICATION", "AID_DISTRIBUTION"])),
    ("scope", json.dumps({"areas": ["大字川妻"], "all": False, "support_only": False}, ensure_ascii=False)),
    ("scope", json.dumps({"areas": [], "all": True, "support_only": True})),
    ("retention_days", 3650),
    ("formats", json.dumps(["cp932", "pfif"])),
    ("partner", "tsukuba"),
    ("tenant", "naka"),
    ("disaster_id", "another-disaster"),
    ("disaster_date", date(2026, 1, 1)),
    ("requested_by", "goka-suzuki"),
    ("valid_until", datetime(2099, 1, 1, tzinfo=UTC)),
    ("created_at", datetime(2026, 11, 21, tzinfo=UTC)),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def control(request: pytest.FixtureRequest, site: Site) -> Iterator[Engine]:
    """The control database the attacker writes: a SQLite file, or a real PostgreSQL database."""
    if request.param == "sqlite":
        engine = open_state(f"sqlite:///{site.root / 'tamper-control.db'}", create=True)
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        engine = open_state(server.create_database("bcpctl_tamper"), create=True)
    yield engine
    engine.dispose()


def _context(site: Site) -> tuple[Any, Any]:
    from dc.config import load_config

    config, path = load_config(site.config_path)
    return config, load_export_settings(config, str(path))


def _request(site: Site, engine: Engine, approvers: tuple[str, ...]) -> str:
    config, exports = _context(site)
    now = datetime.now(UTC)
    made = file_request(
        engine,
        config,
        exports,
        NewRequest(
            partner="koga", tenant="goka", disaster_id="2026-kanto-eq", disaster_date=DISASTER_DATE,
            basis="APPI-69-2-3", purposes=("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION"),
            fields=("name", "address"), scope=Scope(all_areas=True), requested_by="koga-yamada",
        ),
        now,
        config_dir=site.root,
    )  # fmt: skip
    for approver in approvers:
        decide(engine, config, exports, made.id, approver=approver, secret=APPROVER_SECRETS[approver],
               approve=True, reason="", now=now)  # fmt: skip
    return made.id


def _build(site: Site, engine: Engine, request_id: str) -> Any:
    config, exports = _context(site)
    return build_export(
        engine, config, exports, request_id, site.root / "out",
        now=datetime.now(UTC), config_dir=site.root,
    )  # fmt: skip


def _problems(site: Site, engine: Engine, *, with_config: bool = True) -> list[str]:
    config, exports = _context(site)
    report = verify_control_state(
        engine,
        None,
        datetime.now(UTC),
        config=config if with_config else None,
        settings=exports if with_config else None,
    )
    return [f"{p.request}: {p.problem}" for p in report.requests]


def _sql(engine: Engine, request_id: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(export_requests).where(export_requests.c.id == request_id).values(**values))


def test_setting_status_to_approved_is_not_an_approval(site: Site, control: Engine) -> None:
    request_id = _request(site, control, ("goka-suzuki",))  # 1 of the 2 approvals APPI-69-2-3 needs
    _sql(control, request_id, status="approved")
    with pytest.raises(RequestTampered, match=rf"request {request_id} is 'approved' in the database but 'pending'"):
        _build(site, control, request_id)
    assert not (site.root / "out").exists()
    for with_config in (True, False):
        (problem,) = _problems(site, control, with_config=with_config)
        assert problem.startswith(f"{request_id}: ") and "'approved' in the database but 'pending'" in problem


def test_planted_decisions_and_audit_entries_do_not_count(site: Site, control: Engine) -> None:
    """The attacker adds a decision row and a well-linked chain entry claiming tanaka's approval."""
    request_id = _request(site, control, ("goka-suzuki",))
    first = next(e for e in read_entries(control) if e.action == "request.approved")
    forged = json.loads(first.details)
    forged["approval"]["approver"] = "goka-tanaka"  # suzuki's signature, tanaka's name
    replay = {**forged, "approval": {**forged["approval"], "approver": "goka-suzuki"}}
    planted = {"request_id": request_id, "approver": "goka-tanaka", "role": "tenant", "decision": "approve"}
    with control.begin() as conn:
        conn.execute(insert(export_decisions).values(**planted, at=datetime.now(UTC), reason=""))
        append(conn, actor="goka-tanaka", action="request.approved", subject=request_id, details=forged)
        append(conn, actor="goka-suzuki", action="request.approved", subject=request_id, details=replay)
        conn.execute(update(export_requests).where(export_requests.c.id == request_id).values(status="approved"))
    with pytest.raises(RequestTampered, match="does not count") as refused:
        _build(site, control, request_id)
    assert "1 of 2 valid approvals" in refused.value.message
    assert _problems(site, control)


@pytest.mark.parametrize(("column", "value"), SPEC_EDITS, ids=[f"{c}-{i}" for i, (c, _v) in enumerate(SPEC_EDITS)])
def test_every_change_to_an_approved_request_is_refused(site: Site, control: Engine, column: str, value: Any) -> None:
    request_id = _request(site, control, ("goka-suzuki", "goka-tanaka"))
    assert not _problems(site, control)
    _sql(control, request_id, **{column: value})
    keys = ("areas:", "all_areas:", "support_only:") if column == "scope" else (f"{column}:",)
    with pytest.raises(RequestTampered, match=rf"request {request_id} differs from what was requested") as refused:
        _build(site, control, request_id)
    assert "nothing was built" in refused.value.message
    assert any(key in refused.value.message for key in keys), refused.value.message
    assert not (site.root / "out").exists()
    problems = _problems(site, control)
    assert problems[0].startswith(f"{request_id}: request {request_id} differs")
    # the approvals signed the old specification: none counts, so the row's "approved" is a lie too
    assert any("'approved' in the database but 'pending'" in p for p in problems)
    assert _problems(site, control, with_config=False)  # the partner's check (no credentials) sees it too


def test_adding_phone_to_an_approved_appi_request_is_refused_and_named(site: Site, control: Engine) -> None:
    request_id = _request(site, control, ("goka-suzuki", "goka-tanaka"))
    with control.connect() as conn:
        (row,) = conn.execute(select(export_requests.c.fields).where(export_requests.c.id == request_id))
    _sql(control, request_id, fields=json.dumps([*json.loads(row[0]), "phone"]))
    with pytest.raises(RequestTampered, match=rf"request {request_id} differs .*: fields: \+phone; "):
        _build(site, control, request_id)


def test_rewriting_the_whole_chain_still_cannot_widen(site: Site, control: Engine) -> None:
    """The chain has no key: rewrite the creation entry to the widened spec and re-link every hash."""
    request_id = _request(site, control, ("goka-suzuki", "goka-tanaka"))
    _sql(control, request_id, fields=json.dumps(["person_ref", "household_ref", "name", "name_fallback", "phone"]))
    _config, exports = _context(site)
    from victim_support.request import spec_hash, specification
    from victim_support.store import get_request

    widened = specification(get_request(control, request_id, exports, datetime.now(UTC)))
    _rewrite_chain(control, request_id, {"spec": widened, "spec_hash": spec_hash(widened)})
    with pytest.raises(RequestTampered, match="approved a different specification"):
        _build(site, control, request_id)
    assert any("approved a different specification" in p for p in _problems(site, control))


def _rewrite_chain(engine: Engine, request_id: str, created: dict[str, Any]) -> None:
    entries = read_entries(engine)
    prev = "0" * 64
    with engine.begin() as conn:
        conn.execute(delete(audit_log))
        for e in entries:
            details = e.details
            if e.action == "request.created" and e.subject == request_id:
                details = json.dumps(created, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            digest = entry_hash(e.seq, e.at, e.actor, e.action, e.subject, details, prev)
            row = {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject}
            conn.execute(insert(audit_log).values(**row, details=details, prev_hash=prev, hash=digest))
            prev = digest
    assert verify_control_state(engine, None, datetime.now(UTC)).first_bad_seq is None  # the chain itself is fine


def test_a_deleted_row_and_a_malformed_row_are_reported(site: Site, control: Engine) -> None:
    gone = _request(site, control, ())
    garbled = _request(site, control, ())
    with control.begin() as conn:
        conn.execute(delete(export_requests).where(export_requests.c.id == gone))
    _sql(control, garbled, scope="{not json")
    problems = _problems(site, control)
    assert any(p.startswith(f"{gone}: ") and "its row is gone" in p for p in problems)
    assert any(p.startswith(f"{garbled}: ") and "malformed" in p for p in problems)
    with pytest.raises(RequestTampered, match="malformed"):
        _build(site, control, garbled)


def test_an_untampered_pending_request_is_still_just_pending(site: Site, control: Engine) -> None:
    request_id = _request(site, control, ("goka-suzuki",))
    with pytest.raises(RequestStateError, match=r"pending \(1 of 2 approvals\)"):
        _build(site, control, request_id)
    assert not _problems(site, control)


@settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    column=st.sampled_from([c for c, _v in SPEC_EDITS] + ["status"]),
    raw=st.one_of(st.text(max_size=40), st.integers(-5, 10_000).map(str), st.sampled_from(["approved", "[]", "{}"])),
)
def test_any_sql_edit_either_changes_nothing_or_is_refused(site: Site, column: str, raw: str) -> None:
    """Whatever an attacker writes into a pending request's row, it never becomes buildable."""
    engine = open_state(f"sqlite:///{site.root / 'fuzz-control.db'}", create=True)
    try:
        request_id = _request(site, engine, ("goka-suzuki",))
        value: Any = int(raw) if column == "retention_days" and raw.lstrip("-").isdigit() else raw
        if column == "retention_days" and not isinstance(value, int):
            value = 0
        # Plain SQL, as an attacker writes it: SQLite stores any text, even in a DATETIME column.
        row = text("select * from export_requests where id = :id")
        with engine.begin() as conn:
            before = conn.execute(row, {"id": request_id}).one()
            edit = text(f"update export_requests set {column} = :value where id = :id")  # column: a fixed list
            conn.execute(edit, {"value": value, "id": request_id})
            if column != "status":
                conn.execute(text("update export_requests set status = 'approved' where id = :id"), {"id": request_id})
            after = conn.execute(row, {"id": request_id}).one()
        with pytest.raises((RequestTampered, RequestStateError)):
            _build(site, engine, request_id)
        assert bool(_problems(site, engine)) == (before != after)
        assert not (site.root / "out").exists()
    finally:
        with engine.begin() as conn:
            for table in (export_requests, export_decisions, audit_log):
                conn.execute(delete(table))
        engine.dispose()


def test_an_expired_request_cannot_be_revived_by_sql(site: Site, control: Engine) -> None:
    config, exports = _context(site)
    long_ago = datetime.now(UTC) - timedelta(days=10)  # requests stay valid for 7 days
    made = file_request(
        control, config, exports,
        NewRequest(partner="koga", tenant="goka", disaster_id="d", disaster_date=DISASTER_DATE, basis="APPI-69-2-3",
                   purposes=("EVACUEE_IDENTIFICATION",), fields=("name",), scope=Scope(all_areas=True),
                   requested_by="koga-yamada"),
        long_ago,
        config_dir=site.root,
    )  # fmt: skip
    for approver in ("goka-suzuki", "goka-tanaka"):
        decide(control, config, exports, made.id, approver=approver, secret=APPROVER_SECRETS[approver],
               approve=True, reason="", now=long_ago)  # fmt: skip
    with pytest.raises(RequestStateError, match="is expired"):
        _build(site, control, made.id)
    _sql(control, made.id, valid_until=datetime(2099, 1, 1, tzinfo=UTC))
    with pytest.raises(RequestTampered, match="valid_until"):
        _build(site, control, made.id)


def test_an_alternate_approval_is_bound_to_its_reason_and_its_role(site: Site, control: Engine) -> None:
    """The prefecture acting for the town: its reason is signed, and it counts only while it is an alternate."""
    import yaml

    config, exports = _context(site)
    request_id = _request(site, control, ("goka-suzuki",))
    decide(control, config, exports, request_id, approver="pref-bosai", secret=APPROVER_SECRETS["pref-bosai"],
           approve=True, reason="町役場被災", now=datetime.now(UTC))  # fmt: skip
    (entry,) = [e for e in read_entries(control) if e.actor == "pref-bosai"]
    approval = json.loads(entry.details)["approval"]
    assert approval["role"] == "alternate" and approval["reason"] == "町役場被災"
    assert not _problems(site, control)
    doc = yaml.safe_load(site.config_path.read_text())
    doc["exports"]["alternate_approvers"] = []  # the prefecture no longer acts for the town
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(RequestTampered, match="'pref-bosai' is no longer an approver for goka"):
        _build(site, control, request_id)
