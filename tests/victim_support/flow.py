"""Request → approvals → build, as the tests need it (core functions, no CLI)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dc.config import load_config
from dc.state import open_state
from tests.victim_support.conftest import APPROVER_SECRETS, DISASTER_DATE, Site
from victim_support.build import BuildResult, build_export
from victim_support.decisions import decide
from victim_support.fields import FIELDS
from victim_support.policy import Scope
from victim_support.prefiling import file_request
from victim_support.settings import load_export_settings
from victim_support.store import NewRequest

ALL_BASIC = ("name", "name_kana", "birth_date", "sex", "relationship", "address")


def context(site: Site) -> tuple[Any, Any, Any]:
    config, path = load_config(site.config_path)
    return (
        config,
        load_export_settings(config, str(path)),
        open_state(f"sqlite:///{site.root / 'control.db'}", create=True),
    )


def approved_request(
    site: Site,
    *,
    basis: str = "APPI-69-2-3",
    purposes: tuple[str, ...] = ("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION"),
    fields: tuple[str, ...] = ALL_BASIC,
    scope: Scope | None = None,
    formats: tuple[str, ...] = ("cp932", "pfif"),
    approvers: tuple[str, ...] = ("goka-suzuki", "goka-tanaka"),
    now: datetime | None = None,
) -> str:
    config, settings, state = context(site)
    now = now or datetime.now(UTC)
    request = file_request(
        state,
        config,
        settings,
        NewRequest(
            partner="koga",
            tenant="goka",
            disaster_id="2026-kanto-eq",
            disaster_date=DISASTER_DATE,
            basis=basis,
            purposes=purposes,
            fields=fields,
            scope=scope or Scope(all_areas=True),
            requested_by="koga-yamada",
            formats=formats,
        ),
        now,
        config_dir=site.root,
    )
    for approver in approvers:
        approve(site, request.id, approver, now=now)
    return request.id


def approve(site: Site, request_id: str, approver: str, *, now: datetime | None = None, reason: str = "") -> Any:
    """One approval, proven with the approver's own secret (as ``bcpctl export approve`` does it)."""
    return _decide(site, request_id, approver, approve=True, reason=reason, now=now)


def deny(site: Site, request_id: str, approver: str, reason: str, *, now: datetime | None = None) -> Any:
    return _decide(site, request_id, approver, approve=False, reason=reason, now=now)


def _decide(site: Site, request_id: str, approver: str, *, approve: bool, reason: str, now: datetime | None) -> Any:
    config, settings, state = context(site)
    return decide(
        state,
        config,
        settings,
        request_id,
        approver=approver,
        secret=APPROVER_SECRETS[approver],
        approve=approve,
        reason=reason,
        now=now or datetime.now(UTC),
    )


def build(site: Site, request_id: str, *, site_name: str | None = None, now: datetime | None = None) -> BuildResult:
    config, settings, state = context(site)
    return build_export(
        state,
        config,
        settings,
        request_id,
        site.root / "out",
        now=now or datetime.now(UTC),
        site=site_name,
        config_dir=site.root,
    )


def read_csv(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    """The rows keyed by field key (the file's header row holds the Japanese labels)."""
    key_of = {label: key for key, label in FIELDS.items()}
    rows = csv.DictReader(io.StringIO(path.read_bytes().decode(encoding), newline=""))
    return [{key_of[label]: value for label, value in row.items()} for row in rows]
