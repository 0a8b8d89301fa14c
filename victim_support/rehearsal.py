"""The steps of a 訓練 export around its bundle: approvals, delivery, the partner's note, deletion.

Approvals are rehearsed by a rule of their own, never with the configured approvers' secrets:
each run enrols as many throwaway credentials as the tenant's basis needs (``exports.approvals``),
and each approval is proven, verified and counted by the same code a real request passes
(:func:`dc.approvers.prove`, :func:`dc.approvers.verify`, :func:`victim_support.approval.quorum_reached`).
Why not the real officials' credentials: a scheduled drill would need their secrets on disk,
and a real approver's signature in the chain next to the word "approve" is exactly what must
be rare and deliberate. Lawful: synthetic residents are nobody, so no personal information
(個人情報保護法2条1項) is provided and no legal basis is needed. Safe: no row ever enters
``export_requests``, so nothing a rehearsal approved can be built against the real registry.

The partner's side (opening, its PFIF note, its deletion statement) is signed with the
partner's own key when the drill is given it (then it must be the registered ``verify_key``),
else with a key made for the run — the mechanics are exercised, and the result says which.
The note is checked like a real return (signature, PFIF 1.4 parse, a person of the bundle)
but never stored in ``evacuee_notes``: a synthetic person must not appear in the 台帳 view.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from dc import approvers as credentials
from dc.errors import N_, ProblemFound, UsageError
from failover.records import finish_run
from failover.results import Check, RunResult, SystemResult, to_document
from victim_support import signing
from victim_support.approval import TENANT_ROLE, Approval, quorum_reached
from victim_support.bundle import sha256
from victim_support.deletion import NAMESPACE as DELETION_NAMESPACE
from victim_support.deletion import VERSION as DELETION_VERSION
from victim_support.deletion import parse_statement
from victim_support.notes import NAMESPACE as NOTES_NAMESPACE
from victim_support.pfifnote import Note, notes_document, parse_notes

TRAINING = "訓練"


def rehearse_approvals(required: int, what: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """``required`` distinct approvals of ``what`` by throwaway credentials, each verified; the proofs."""
    enrolled: dict[str, str] = {}
    proofs = []
    for n in range(1, required + 1):
        name = f"{TRAINING}-approver-{n}"
        secret = credentials.new_secret()
        enrolled[name] = credentials.enroll(secret, credentials.MIN_COST).text()
        proofs.append(credentials.prove(enrolled, name, secret, {**what, "drill": TRAINING}))
    for proof in proofs:
        if problem := credentials.verify(enrolled, proof.details()):
            raise ProblemFound(N_("a rehearsal approval does not verify: {problem}"), problem=problem)
    if not quorum_reached([Approval(p.approver, TENANT_ROLE, now) for p in proofs], required):
        raise ProblemFound(N_("the rehearsal's approvals do not reach the quorum of {required}"), required=required)
    return [p.details() for p in proofs]


def deliver(bundle: Path, inbox: Path) -> Path:
    """Copy the sealed bundle into the partner's inbox and check that every file arrived unchanged."""
    target = inbox / bundle.name
    if target.exists():
        raise UsageError(N_("{target} exists already; nothing was delivered"), target=target)
    shutil.copytree(bundle, target)
    for sent in bundle.iterdir():
        if sha256((target / sent.name).read_bytes()) != sha256(sent.read_bytes()):
            raise ProblemFound(N_("{name} arrived changed in {target}"), name=sent.name, target=target)
    return target


@dataclass(frozen=True)
class PartnerSide:
    """What the partner signs in a rehearsal, and with which key."""

    key: Ed25519PrivateKey
    #: the partner's own registered key, or one made for this run
    registered: bool


def partner_side(signing_key: Path | None, verify_key: str | None) -> PartnerSide:
    """The partner's key when given (it must be its registered one), else a key made for the run."""
    if signing_key is None:
        return PartnerSide(Ed25519PrivateKey.generate(), registered=False)
    key = signing.parse_private_key(signing_key.read_bytes(), str(signing_key))
    if not verify_key:
        raise UsageError(N_("the partner has no registered verify_key to check its rehearsal signatures against"))
    if signing.public_line(key.public_key()) != signing.public_line(signing.load_verify_key(verify_key)):
        raise UsageError(
            N_("{signing_key} is not the partner's registered signing key (partners.<id>.verify_key)"),
            signing_key=signing_key,
        )
    return PartnerSide(key, registered=True)


def return_note(
    side: PartnerSide, *, partner_id: str, partner_name: str, person_record_id: str, refs: set[str], now: datetime
) -> Note:
    """The partner's signed PFIF 1.4 note about one rehearsal person, verified and parsed as a real return is."""
    note = Note(
        note_record_id=f"{partner_id}.drill.invalid/{TRAINING}-{now:%Y%m%dT%H%M%SZ}",
        person_record_id=person_record_id,
        author_name=f"{partner_name} {TRAINING}",
        source_date=now.replace(microsecond=0),
        text=f"{TRAINING}: 避難所で本人を確認 (rehearsal note)",
        author_made_contact=True,
        status="is_note_author",
        last_known_location=f"{TRAINING}避難所",
    )
    document = notes_document([note])
    signature = signing.sign(side.key, document, NOTES_NAMESPACE)
    signing.verify(side.key.public_key(), document, signature, NOTES_NAMESPACE)
    (parsed,) = parse_notes(document)
    if parsed.person_record_id.rsplit("/", 1)[-1] not in refs:
        raise ProblemFound(
            N_("the returned note names {person_record_id}, no person of the rehearsal bundle"),
            person_record_id=parsed.person_record_id,
        )
    return parsed


def confirm_deletion(
    side: PartnerSide, *, request_id: str, partner_id: str, partner_name: str, copies: list[Path]
) -> str:
    """The partner deletes every copy it holds and signs the statement; verified and parsed as a real one is."""
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
    left = [str(c) for c in copies if c.exists()]
    if left:
        raise ProblemFound(N_("the partner's copy is still there after deletion: {left}"), left=left[0])
    lines = [
        DELETION_VERSION,
        f"request: {request_id}",
        f"partner: {partner_id}",
        f"deleted-by: {partner_name} {TRAINING}",
        f"note: {TRAINING}のため全ての複製を消去",
    ]
    statement = ("\n".join(lines) + "\n").encode()
    signature = signing.sign(side.key, statement, DELETION_NAMESPACE)
    signing.verify(side.key.public_key(), statement, signature, DELETION_NAMESPACE)
    found = parse_statement(statement)
    if found.request_id != request_id or found.partner != partner_id:
        raise ProblemFound(N_("the deletion statement names another request or partner"))
    return found.deleted_by


class Steps:
    """Seconds per step of the path, in order, and a check per step for the report."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.last = started
        self.seconds: dict[str, float] = {}
        self.checks: list[Check] = []

    def done(self, name: str, detail: str = "", ok: bool = True) -> None:
        now = time.monotonic()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now
        self.checks.append(Check(f"{TRAINING} {name}", ok, detail))

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)


def finish(engine: Engine, run: RunResult, tenant_id: str, steps: Steps, rto: float | None) -> None:
    """Record the run's end in ``drill_runs``: one pseudo-system whose RTO is the time to deliver."""
    run.systems = [
        SystemResult(
            system=f"{TRAINING}-export-{tenant_id}",
            tenant=tenant_id,
            business="被災者支援 名簿提供 (訓練)",
            tier=0,
            group=0,
            rpo_target=None,
            rto_target=None,
            status="passed" if run.error is None else "failed",
            steps=dict(steps.seconds),
            rto_seconds=rto,
            checks=list(steps.checks),
            error=run.error,
        )
    ]
    run.checks = list(steps.checks)
    run.finished_at = datetime.now(UTC)
    run.status, problem = run.verdict()
    finish_run(engine, run.id, status=run.status, error=problem, document=to_document(run))
