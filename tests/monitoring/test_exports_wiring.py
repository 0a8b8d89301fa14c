"""victim_support wired into /metrics and the health job: export requests by state, and the
hash-chained audit log verified against the head seen last time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from monitoring.tasks import JobContext, health_checks
from tests.monitoring.conftest import TWO_SYSTEMS, Lab, job_spec, scrape
from tests.victim_support.conftest import APPROVER_SECRETS, approver_credentials
from victim_support import audit
from victim_support.decisions import decide
from victim_support.policy import Scope
from victim_support.settings import load_export_settings
from victim_support.store import NewRequest, count_build, create_request

ESTIMATE = {"site": "offsite", "snapshot": "0" * 16, "as_of": "2026-11-20T00:00:00+00:00", "rows": 9,
            "excluded_protected": 0, "areas": 1, "ledger_required": False, "ledger_entries": 0}  # fmt: skip
RECIPIENT = "age18qjne9dpr29q7p4y94g8jfdlvxe6p74n3xkfsm7c0s0x4hsyyygqppyqax"
SYSTEMS = TWO_SYSTEMS


def test_export_requests_by_state(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(
        SYSTEMS,
        extra={
            "partners": {"koga": {"name": "古河市", "lg_code": "082040", "age_recipient": RECIPIENT}},
            "exports": {"tenants": {"goka": {"approvers": ["goka-suzuki"]}}},
            "approvers": {"goka-suzuki": approver_credentials()["goka-suzuki"]},
        },
    )
    engine, config = lab.engine(), lab.config
    settings = load_export_settings(config)
    now = datetime.now(UTC)

    def new(when: datetime) -> str:
        request = NewRequest(
            partner="koga",
            tenant="goka",
            disaster_id="2026-kanto-eq",
            disaster_date=(now - timedelta(days=60)).date(),
            basis="APPI-69-2-3",
            purposes=("EVACUEE_IDENTIFICATION",),
            fields=("name", "birth_date", "address"),
            scope=Scope(all_areas=True),
            requested_by="koga-yamada",
        )
        # the check against a replica is tested in tests/victim_support; here only its record matters
        return create_request(engine, config, settings, request, when, estimate=ESTIMATE).id

    new(now)  # pending
    new(now)  # pending
    approved = new(now)
    delivered = new(now)
    new(now - timedelta(days=30))  # never decided, now past its validity: expired
    for request_id in (approved, delivered):
        decide(
            engine,
            config,
            settings,
            request_id,
            approver="goka-suzuki",
            secret=APPROVER_SECRETS["goka-suzuki"],
            approve=True,
            reason="",
            now=now,
        )
    with engine.begin() as conn:
        count_build(conn, delivered)
    value = scrape(lab, engine).get_sample_value
    got = {
        state: value("bcp_export_requests", {"state": state})
        for state in ("pending", "approved", "delivered", "denied", "expired")
    }
    assert got == {"pending": 2, "approved": 1, "delivered": 1, "denied": 0, "expired": 1}


def test_audit_chain_is_verified_by_the_health_job(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(SYSTEMS)
    engine = lab.engine()
    context = JobContext(engine, lab.config, lab.root)
    for i in range(3):
        audit.audited(
            engine,
            lambda conn, i=i: audit.append(conn, actor="t", action="request.created", subject=f"r{i}", details={}),
        )
    health_checks(context, job_spec("health", "health"))
    assert scrape(lab, engine).get_sample_value("bcp_audit_chain_ok") == 1
    # Deleting the newest entry leaves a chain that verifies on its own; the anchor catches it.
    with engine.begin() as conn:
        conn.execute(audit.audit_log.delete().where(audit.audit_log.c.seq == 3))
    health_checks(context, job_spec("health", "health"))
    value = scrape(lab, engine).get_sample_value
    assert value("bcp_audit_chain_ok") == 0
    assert value("bcp_audit_chain_verified_timestamp_seconds") is not None


def test_an_edited_audit_entry_breaks_the_chain(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(SYSTEMS)
    engine = lab.engine()
    for i in range(2):
        audit.audited(
            engine,
            lambda conn, i=i: audit.append(conn, actor="t", action="request.created", subject=f"r{i}", details={}),
        )
    with engine.begin() as conn:
        conn.execute(update(audit.audit_log).where(audit.audit_log.c.seq == 1).values(subject="forged"))
    health_checks(JobContext(engine, lab.config, lab.root), job_spec("health", "health"))
    assert scrape(lab, engine).get_sample_value("bcp_audit_chain_ok") == 0
