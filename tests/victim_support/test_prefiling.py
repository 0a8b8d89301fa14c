"""Checks before anyone approves: a request that cannot build is refused when filed, never after approval.

Against the real fixture (a replica of 五霞町's registry at 5%): a 町字 the newest snapshot
lacks is refused (exit 2) and nothing is stored; a purpose that needs the 被災者台帳 with a
disaster id that matches no entry is refused unless the request says why; the estimate shown
to approvers equals what the build then carries; a request filed without the check cannot be
approved.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dc.audit import read_entries
from tests.conftest import Cli
from tests.victim_support.conftest import DISASTER_DATE, Site
from tests.victim_support.flow import approve, build, context
from tests.victim_support.test_cli import REQUEST, one_line_error
from victim_support.errors import PolicyRejected, RequestTampered
from victim_support.policy import NewRequest, Scope
from victim_support.prefiling import file_request, ledger_reasons, ledger_required
from victim_support.store import create_request, export_requests


def new_request(scope: Scope, **changes: object) -> NewRequest:
    fields: dict[str, object] = {
        "partner": "koga",
        "tenant": "goka",
        "disaster_id": "2026-kanto-eq",
        "disaster_date": DISASTER_DATE,
        "basis": "APPI-69-2-3",
        "purposes": ("EVACUEE_IDENTIFICATION",),
        "fields": ("name", "birth_date", "address"),
        "scope": scope,
        "requested_by": "koga-yamada",
        **changes,
    }
    return NewRequest(**fields)  # type: ignore[arg-type]


def file(site: Site, new: NewRequest) -> object:
    config, settings, state = context(site)
    return file_request(state, config, settings, new, datetime.now(UTC), config_dir=site.root)


def stored_requests(site: Site) -> int:
    _config, _settings, state = context(site)
    with state.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(export_requests)).scalar_one())


def registry_areas(site: Site) -> list[tuple[str, str]]:
    with sqlite3.connect(site.registry) as conn:
        return conn.execute("select distinct machiaza_id, machiaza_name from residents where status='1'").fetchall()


def add_ledger(site: Site, disaster_id: str, count: int) -> list[str]:
    """``count`` 台帳 entries of ``disaster_id`` in the registry, backed up and "replicated" to the offsite."""
    from backup.jobs import backup_systems, site_repository

    with sqlite3.connect(site.registry) as conn:
        victims = [
            r[0]
            for r in conn.execute(
                "select atena_no from residents where status='1' and not shien_sochi limit ?", (count,)
            )
        ]
        conn.executemany(
            f"insert into damage values (?, '{disaster_id}', '全壊', '交付済', '')", [(a,) for a in victims]
        )
    config, _settings, _state = context(site)
    with site_repository(config, "primary", site.root) as repo:
        backup_systems(config, repo, None, config_dir=site.root)
    shutil.rmtree(site.offsite)
    shutil.copytree(site.primary, site.offsite)
    return victims


def test_a_machiaza_not_in_the_replica_is_refused_at_filing_and_nothing_is_stored(site: Site) -> None:
    real = registry_areas(site)
    bogus = ["1", "0000000", "大字どこか", real[0][1] + "x", real[0][0][:-1], f"{real[0][0]},{real[1][0]}"]

    @settings(
        max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.sampled_from(bogus), st.lists(st.sampled_from([a for pair in real for a in pair]), max_size=2))
    def refused(wrong: str, right: list[str]) -> None:
        with pytest.raises(PolicyRejected, match="町字 not in the registry of 五霞町") as caught:
            file(site, new_request(Scope(areas=(*right, wrong))))
        assert wrong in str(caught.value) and caught.value.exit_code == 2

    refused()
    assert stored_requests(site) == 0
    _config, _settings, state = context(site)
    rejected = [e for e in read_entries(state) if e.action == "request.rejected"]
    assert rejected and all("町字 not in the registry" in e.details for e in rejected)


@pytest.mark.parametrize(
    ("basis", "purposes", "fields", "support_only"),
    [
        ("APPI-69-2-3", ("EVACUEE_IDENTIFICATION",), ("name", "birth_date", "address"), False),
        ("DMA-49-11-3", ("SAFETY_CONFIRMATION",), ("name", "address", "phone"), True),
    ],
)
def test_the_estimate_shown_to_approvers_is_what_the_build_carries(
    site: Site, basis: str, purposes: tuple[str, ...], fields: tuple[str, ...], support_only: bool
) -> None:
    areas = tuple(name for _id, name in registry_areas(site)[:3])
    for scope in (Scope(areas=areas, support_only=support_only), Scope(all_areas=True, support_only=support_only)):
        request = file(site, new_request(scope, basis=basis, purposes=purposes, fields=fields))
        estimate = request.estimate  # type: ignore[attr-defined]
        assert estimate is not None and estimate["site"] == "offsite"
        for approver in ("goka-suzuki", "goka-tanaka")[: 1 if basis == "DMA-49-11-3" else 2]:
            approve(site, request.id, approver)  # type: ignore[attr-defined]
        result = build(site, request.id)  # type: ignore[attr-defined]
        assert (estimate["rows"], estimate["excluded_protected"]) == (result.rows, result.excluded_protected)
        assert estimate["snapshot"] == result.snapshot_id[:16]


def test_a_disaster_id_missing_from_the_ledger_is_refused_when_the_purpose_needs_it(site: Site) -> None:
    add_ledger(site, "2026-kanto-eq", 5)
    aid = {
        "basis": "DMA-90-4-1-3",
        "purposes": ("AID_DISTRIBUTION",),
        "fields": ("name", "address", "damage_status", "aid_status"),
    }
    with pytest.raises(PolicyRejected, match="disaster id '2026-kanto-ew' matches no 被災者台帳 entry") as caught:
        file(site, new_request(Scope(all_areas=True), disaster_id="2026-kanto-ew", **aid))
    assert "2026-kanto-eq" in str(caught.value)  # the 台帳's ids are named, so a typo is seen
    assert stored_requests(site) == 0

    found = file(site, new_request(Scope(all_areas=True), **aid))
    assert found.estimate["ledger_required"] and found.estimate["ledger_entries"] == 5  # type: ignore[attr-defined]

    waived = file(
        site,
        new_request(
            Scope(all_areas=True),
            disaster_id="2026-kanto-ew",
            ledger_waiver="台帳は未作成、配分対象の特定に使う",
            **aid,
        ),
    )
    assert waived.estimate["ledger_entries"] == 0  # type: ignore[attr-defined]
    # the waiver is part of what approvers sign: changing it in the row breaks the request
    _config, _settings, state = context(site)
    with state.begin() as conn:
        conn.execute(export_requests.update().where(export_requests.c.id == waived.id).values(ledger_waiver="x"))  # type: ignore[attr-defined]
    with pytest.raises(RequestTampered, match="ledger_waiver"):
        approve(site, waived.id, "goka-suzuki")  # type: ignore[attr-defined]

    # a purpose that does not need the 台帳 is not refused for it
    plain = file(site, new_request(Scope(all_areas=True), disaster_id="2026-kanto-ew"))
    assert plain.estimate["ledger_required"] is False  # type: ignore[attr-defined]


def test_ledger_rules_are_pure() -> None:
    assert ledger_required(("AID_DISTRIBUTION",), ("name",))
    assert ledger_required(("CERTIFICATE_APPLICATION_RELAY",), ("damage",))
    assert not ledger_required(("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION"), ("name", "address"))
    common = {"disaster_id": "d", "known": ("e",), "tenant": "五霞町"}
    assert ledger_reasons(required=True, entries=0, waiver="", **common)  # type: ignore[arg-type]
    assert not ledger_reasons(required=True, entries=0, waiver="理由", **common)  # type: ignore[arg-type]
    assert not ledger_reasons(required=True, entries=1, waiver="", **common)  # type: ignore[arg-type]
    assert not ledger_reasons(required=False, entries=0, waiver="", **common)  # type: ignore[arg-type]


def test_a_request_filed_without_the_check_cannot_be_approved(site: Site) -> None:
    config, settings, state = context(site)
    unchecked = create_request(state, config, settings, new_request(Scope(all_areas=True)), datetime.now(UTC))
    before = len(read_entries(state))
    with pytest.raises(PolicyRejected, match="not checked against the replica"):
        approve(site, unchecked.id, "goka-suzuki")
    assert len(read_entries(state)) == before


def test_cli_refuses_area_1_at_filing_and_shows_the_estimate(cli: Cli, site: Site, isolated_env: Path) -> None:
    config = ("--config", str(site.config_path))
    without_areas = [a for a in REQUEST if a != "--all-areas"]
    one_line_error(cli(*without_areas, "--area", "1", *config), 2, "町字 not in the registry of 五霞町")
    made = cli(*REQUEST, *config)
    assert made.returncode == 0, made.stderr
    assert "estimate:" in made.stdout and "protected rows excluded" in made.stdout
    as_json = json.loads(cli(*REQUEST, *config, "--json").stdout)
    assert as_json["estimate"]["rows"] > 0
    listed = cli("export", "list", *config, "--json")
    assert all(r["estimate"] for r in json.loads(listed.stdout))
