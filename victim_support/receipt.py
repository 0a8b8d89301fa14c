"""The partner's side: open a bundle and record the opening — or the refusal — in the local audit log.

"Audited at both ends": the receiving municipality's own control database gets an entry for
every bundle it opens or refuses, naming the sender's signing key and the payload hash, so its
auditors can show what was received, from whom, and that it was deleted at expiry.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from dc.errors import BcpError
from victim_support import audit
from victim_support.bundle import PAYLOAD, OpenedBundle, open_bundle
from victim_support.signing import fingerprint, load_verify_key


def open_and_record(
    engine: Engine, bundle: Path, identity_file: Path, verify_key: str, out: Path, *, now: datetime, actor: str
) -> OpenedBundle:
    public = load_verify_key(verify_key)
    payload = bundle / PAYLOAD
    digest = None
    if payload.is_file():
        with open(payload, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()  # streamed: the file is untrusted
    details = {"bundle": bundle.name, "payload_sha256": digest, "signer": fingerprint(public)}
    try:
        opened = open_bundle(bundle, identity_file, public, out, now)
    except BcpError as exc:
        refused = {**details, "reason": exc.message}
        audit.audited(
            engine,
            lambda conn: audit.append(conn, actor=actor, action="bundle.refused", subject=bundle.name, details=refused),
        )
        raise
    counts = opened.manifest.get("counts", {})
    audit.audited(
        engine,
        lambda conn: audit.append(
            conn,
            actor=actor,
            action="bundle.opened",
            subject=str(opened.envelope.get("request_id")),
            details={
                **details,
                "from": opened.envelope.get("from"),
                "rows": counts.get("rows"),
                "expires_at": opened.envelope.get("expires_at"),
            },
        ),
    )
    return opened
