"""Handing an approved request's bundle to its partner: built once from the replica, served as ciphertext.

The bundle is built on the first download (:func:`victim_support.build.build_export`: newest
offsite snapshot, policy-limited columns, age-encrypted to the partner, signed by the tenant)
and kept under the bundle directory until the partner confirms its deletion. What leaves is
a tar of ``envelope.json``, ``envelope.json.sig`` and ``payload.tar.age``: the envelope holds
no resident data and the payload only opens with the partner's age identity, so no caller of
this module ever hands out plaintext resident data. Every download and the deletion
confirmation are audited, in the transaction that records them.

The web's partner API and portal and the command line (``bcpctl export deliveries``,
``bcpctl export confirm-deletion``) are surfaces over these functions. The table keeps the
name the previous release gave it, so deployed sites keep their rows without a data migration.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, insert, select, update

from dc.clock import jst_day, jst_text
from dc.config import Consortium
from dc.errors import N_, UsageError
from dc.state import UtcDateTime, metadata
from victim_support import approval, audit
from victim_support.build import build_export
from victim_support.bundle import ENVELOPE, PAYLOAD, SIGNATURE
from victim_support.errors import BundleGone, RequestNotFound, RequestStateError, RequestTampered
from victim_support.settings import ExportSettings
from victim_support.store import ExportRequest, export_requests, get_request

deliveries = Table(
    "web_deliveries",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("partner", String(64), nullable=False),
    Column("bundle", Text, nullable=False),
    Column("payload_sha256", String(64), nullable=False),
    Column("built_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("downloads", Integer, nullable=False, default=0),
    Column("last_download_at", UtcDateTime),
    Column("deleted_at", UtcDateTime),
    Column("deleted_by", Text),
)

#: who deleted the copies, and the note: one line each, as the web's form and API accept them
_DELETED_BY = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_NOTE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f]{0,1000}")


@dataclass(frozen=True)
class Delivery:
    request_id: str
    partner: str
    bundle: str
    payload_sha256: str
    built_at: datetime
    expires_at: datetime
    downloads: int
    last_download_at: datetime | None
    deleted_at: datetime | None
    deleted_by: str | None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def status(self, now: datetime) -> str:
        """``deleted`` (confirmed by the partner), ``expired`` (confirmation due), ``downloaded`` or ``ready``."""
        if self.deleted_at is not None:
            return "deleted"
        if self.expired(now):
            return "expired"
        return "downloaded" if self.downloads else "ready"


@dataclass(frozen=True)
class Download:
    filename: str
    path: Path
    delivery: Delivery


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(request_id: str) -> threading.Lock:
    """One build per request in this process; across processes the conditional updates below decide."""
    with _locks_guard:
        return _locks.setdefault(request_id, threading.Lock())


def find_delivery(engine: Engine, request_id: str) -> Delivery | None:
    with engine.connect() as conn:
        return _read(conn, request_id)


def _read(conn: Connection, request_id: str) -> Delivery | None:
    row = conn.execute(select(deliveries).where(deliveries.c.request_id == request_id)).first()
    return Delivery(**row._mapping) if row else None


def list_deliveries(engine: Engine, *, request_id: str | None = None) -> list[Delivery]:
    """Every delivery, oldest first; only ``request_id``'s when given (an unknown request is refused)."""
    query = select(deliveries).order_by(deliveries.c.built_at, deliveries.c.request_id)
    with engine.connect() as conn:
        if request_id is not None:
            known = conn.execute(select(export_requests.c.id).where(export_requests.c.id == request_id)).first()
            if known is None:
                raise RequestNotFound(
                    N_("no export request '{request_id}' (see 'bcpctl export list')"), request_id=request_id
                )
            query = query.where(deliveries.c.request_id == request_id)
        return [Delivery(**row._mapping) for row in conn.execute(query)]


def own_request(
    engine: Engine, settings: ExportSettings, request_id: str, partner: str, now: datetime
) -> ExportRequest:
    """The partner's own request; any other id — unknown or another partner's — is simply not found."""
    try:
        request = get_request(engine, request_id, settings, now)
    except UsageError:
        raise RequestNotFound(N_("no export request '{request_id}' for this partner"), request_id=request_id) from None
    if request.partner != partner:
        raise RequestNotFound(N_("no export request '{request_id}' for this partner"), request_id=request_id)
    return request


def download(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    request_id: str,
    partner: str,
    *,
    bundle_root: Path,
    config_dir: Path | None,
    now: datetime,
    via: str,
) -> Download:
    """The request's bundle as a tar of ciphertext and signed envelope, built on first use; audited."""
    request = own_request(engine, settings, request_id, partner, now)
    with _lock(request_id):
        delivery = find_delivery(engine, request_id)
        if delivery is None:
            if request.status != approval.APPROVED:
                have = f" ({len(request.approvals)} of {request.required_approvals} approvals)"
                raise RequestStateError(
                    N_("request {request_id} is {status}{have}"),
                    request_id=request_id,
                    status=request.status,
                    have=have if request.status == "pending" else "",
                )
            try:
                delivery = _build(engine, config, settings, request, bundle_root, config_dir, now, partner)
            except RequestTampered:
                # The details (approver names, what changed) are the data center's business.
                raise RequestStateError(
                    N_(
                        "request {request_id} cannot be delivered: its record does not match the audit log (the "
                        "data center's audit check reports it)"
                    ),
                    request_id=request_id,
                ) from None
        _servable(delivery, now)
        tar_path = Path(delivery.bundle + ".tar")
        if not tar_path.is_file():
            _write_tar(Path(delivery.bundle), tar_path)
        served = delivery

        def work(conn: Connection) -> None:
            counted = conn.execute(
                update(deliveries)
                .where(deliveries.c.request_id == request_id, deliveries.c.deleted_at.is_(None))
                .values(downloads=deliveries.c.downloads + 1, last_download_at=now)
            )
            if counted.rowcount != 1:  # its deletion was confirmed meanwhile (by another process)
                _servable(_read(conn, request_id) or served, now)
                raise BundleGone(N_("the bundle of {request_id} can no longer be sent"), request_id=request_id)
            audit.append(
                conn,
                actor=f"partner:{partner}",
                action="bundle.downloaded",
                subject=request_id,
                details={"bundle": Path(served.bundle).name, "payload_sha256": served.payload_sha256, "via": via},
            )

        audit.audited(engine, work)
    return Download(f"{Path(delivery.bundle).name}.tar", tar_path, delivery)


def _servable(delivery: Delivery, now: datetime) -> None:
    if delivery.deleted_at:
        deleted = jst_day(delivery.deleted_at).isoformat()  # the partner's calendar day
        raise BundleGone(
            N_("the bundle of {request_id} was deleted on {deleted}; it cannot be sent again"),
            request_id=delivery.request_id,
            deleted=deleted,
        )
    if delivery.expired(now):
        raise BundleGone(
            N_("the bundle of {request_id} expired at {expires_at}; confirm its deletion"),
            request_id=delivery.request_id,
            expires_at=jst_text(delivery.expires_at),
        )


def _build(
    engine: Engine,
    config: Consortium,
    settings: ExportSettings,
    request: ExportRequest,
    bundle_root: Path,
    config_dir: Path | None,
    now: datetime,
    partner: str,
) -> Delivery:
    out = bundle_root / request.id
    result = build_export(
        engine,
        config,
        settings,
        request.id,
        out,
        now=now,
        config_dir=config_dir,
        actor=f"web:{partner}",
    )
    envelope = json.loads((result.bundle / ENVELOPE).read_text(encoding="utf-8"))
    delivery = Delivery(
        request.id,
        partner,
        str(result.bundle),
        envelope["payload"]["sha256"],
        now.astimezone(UTC),
        result.expires_at.astimezone(UTC),
        0,
        None,
        None,
        None,
    )
    with engine.begin() as conn:
        conn.execute(insert(deliveries).values(**vars(delivery)))
    return delivery


def _write_tar(bundle: Path, target: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in (ENVELOPE, SIGNATURE, PAYLOAD):
            tar.add(bundle / name, arcname=f"{bundle.name}/{name}", recursive=False)
    tmp = target.with_suffix(".tar.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.rename(target)


def confirm_deletion(
    engine: Engine,
    settings: ExportSettings,
    request_id: str,
    partner: str,
    *,
    deleted_by: str,
    note: str,
    now: datetime,
    via: str,
) -> Delivery:
    """The partner states that every copy is deleted (保有期間の満了); the server's copy goes too.

    ``partner`` must already be proven by the caller: the web's signed request, token or
    login, or a statement signed with the partner's key (:mod:`victim_support.deletion`).
    """
    if not _DELETED_BY.fullmatch(deleted_by):
        raise UsageError(N_("deleted-by must name who deleted the copies: 1 to 200 characters on one line"))
    if not _NOTE.fullmatch(note):
        raise UsageError(N_("the note must be at most 1000 characters without control characters"))
    own_request(engine, settings, request_id, partner, now)
    with _lock(request_id):
        delivery = find_delivery(engine, request_id)
        if delivery is None or delivery.downloads == 0:
            raise RequestStateError(
                N_("the bundle of {request_id} was never downloaded; there is nothing to delete"), request_id=request_id
            )
        at = now.astimezone(UTC)

        def work(conn: Connection) -> None:
            done = conn.execute(
                update(deliveries)
                .where(deliveries.c.request_id == request_id, deliveries.c.deleted_at.is_(None))
                .values(deleted_at=at, deleted_by=deleted_by)
            )
            if done.rowcount != 1:
                confirmed = _read(conn, request_id) or delivery
                when = f" on {confirmed.deleted_at:%Y-%m-%d}" if confirmed.deleted_at else ""
                raise RequestStateError(
                    N_("deletion of {request_id} was already confirmed{when}"), request_id=request_id, when=when
                )
            audit.append(
                conn,
                actor=f"partner:{partner}",
                action="bundle.deletion_confirmed",
                subject=request_id,
                details={
                    "deleted_by": deleted_by,
                    "note": note,
                    "expires_at": delivery.expires_at.isoformat(),
                    "before_expiry": now < delivery.expires_at,
                    "via": via,
                },
            )

        audit.audited(engine, work)
        bundle = Path(delivery.bundle)
        shutil.rmtree(bundle.parent if bundle.parent.name == request_id else bundle, ignore_errors=True)
    return Delivery(**{**vars(delivery), "deleted_at": at, "deleted_by": deleted_by})
