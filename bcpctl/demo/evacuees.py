"""Step 6 of the story: つくば市 receives the evacuee list of 常陸大宮市, and opens it.

The request, the approval, the build and the opening are the same core functions the
``bcpctl export`` commands and the partner portal call. The partner's side is proven twice:
with bcpctl (signature, expiry, recipient checked, receipt audited) and, when the ``age``
command is installed, with nothing but ``age`` and ``tar`` — a sheltering city may not run
bcpctl at all.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bcpctl.demo.consortium import EXPORT_APPROVERS, PARTNER, KeyMaterial
from dc.config import Consortium
from dc.errors import BcpError
from victim_support.bundle import PAYLOAD

#: the story's affected town and its disaster
AFFECTED_TENANT = "hitachiomiya"
DISASTER_ID = "2026-ibaraki-hokubu-eq"


def affected_areas(registry: Path, count: int = 2) -> tuple[str, ...]:
    """The 町字 hit hardest: most 避難行動要支援者 who may be listed (no 支援措置 or 抑止)."""
    conn = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT machiaza_name FROM residents WHERE yoshiensha AND NOT shien_sochi AND NOT yokushi "
            "GROUP BY machiaza_name ORDER BY count(*) DESC, machiaza_name LIMIT ?",
            (count,),
        ).fetchall()
    finally:
        conn.close()
    return tuple(name for (name,) in rows)


class StepFailed(BcpError):
    """A step ran but its own verification failed."""


def export_to_partner(
    config: Consortium,
    config_path: Path,
    state: Any,
    keys: KeyMaterial,
    areas: tuple[str, ...],
    disaster_at: datetime,
    workdir: Path,
) -> dict[str, Any]:
    """Request (DMA-49-11-3, 要支援者 of two 町字), approve, build from the replica, open, audit."""
    from dc.approvers import credential_of
    from dc.secrets import read_secret_file
    from victim_support.build import build_export
    from victim_support.decisions import decide
    from victim_support.integrity import verify_control_state
    from victim_support.policy import Scope
    from victim_support.prefiling import file_request
    from victim_support.receipt import open_and_record
    from victim_support.settings import load_export_settings
    from victim_support.store import NewRequest

    settings = load_export_settings(config, str(config_path))
    now = datetime.now(UTC)
    request = file_request(
        state,
        config,
        settings,
        NewRequest(
            partner=PARTNER,
            tenant=AFFECTED_TENANT,
            disaster_id=DISASTER_ID,
            disaster_date=(disaster_at + timedelta(hours=9)).date(),  # JST
            basis="DMA-49-11-3",
            purposes=("SAFETY_CONFIRMATION", "EVACUEE_IDENTIFICATION"),
            fields=("name", "name_kana", "birth_date", "sex", "address", "phone"),
            scope=Scope(areas, False, True),
            requested_by="つくば市 危機管理課 山田",
            formats=("cp932",),
        ),
        now,
        config_dir=config_path.parent,
    )
    approver = f"{AFFECTED_TENANT}-{EXPORT_APPROVERS[0]}"
    secret = read_secret_file(keys.approver_secrets[approver], "approver secret")
    approved = decide(
        state, config, settings, request.id, approver=approver, secret=secret, approve=True, reason="", now=now
    )
    if approved.status != "approved":
        raise StepFailed(f"request {request.id} is {approved.status} after approval")
    built = build_export(
        state,
        config,
        settings,
        request.id,
        workdir / "offsite" / "export" / "outbox",
        now=datetime.now(UTC),
        config_dir=config_path.parent,
        actor="demo-operator",
    )
    verify_key = keys.tenants[AFFECTED_TENANT][2]
    received = workdir / "partner" / "received"
    opened = open_and_record(
        state,
        built.bundle,
        keys.partner_identity,
        verify_key,
        received,
        now=datetime.now(UTC),
        actor=f"{PARTNER}-official",
    )
    by_age = open_bundle_with_age_cli(built.bundle, keys.partner_identity, workdir / "partner" / "age")
    chain = verify_control_state(state, None, datetime.now(UTC), config=config, settings=settings)
    export = {
        "request": request.id,
        "partner": PARTNER,
        "tenant": AFFECTED_TENANT,
        "basis": "DMA-49-11-3",
        "areas": list(areas),
        "rows": built.rows,
        "excluded_rows": built.excluded_protected,
        "cp932_lossy_rows": built.cp932_lossy_rows,
        "files": sorted(opened.files),
        "bundle": str(built.bundle),
        "site": built.site,
        "as_of": built.as_of.isoformat(timespec="seconds"),
        "replication_lag": built.replication_lag,
        "opened_by_partner": bool(opened.files),
        "opened_with_age_cli": by_age,
        "approved_by": [
            {"approver": a.approver, "credential": credential.id if credential else None}
            for a in approved.approvals
            for credential in [credential_of(config.approvers, a.approver)]
        ],
        "audit_ok": chain.ok,
        "audit_entries": chain.entries,
        "requests_match_chain": not chain.requests,
    }
    if not (built.rows > 0 and opened.files and chain.ok and not chain.requests and by_age is not False):
        raise StepFailed(f"export check failed: {export}")
    return export


def open_bundle_with_age_cli(bundle: Path, identity: Path, out: Path) -> bool | None:
    """Decrypt the payload with ``age`` and unpack it into ``out``; ``None`` when age is not installed."""
    age = shutil.which("age")
    if age is None:
        return None
    done = subprocess.run(
        [age, "--decrypt", "--identity", str(identity), str(bundle / PAYLOAD)], capture_output=True, timeout=120
    )
    if done.returncode != 0:
        return False
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        names = tar.getnames()
        tar.extractall(out, filter="data")
    return "manifest.json" in names and any(name.endswith(".csv") for name in names)
