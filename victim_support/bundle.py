"""Sealing and opening a bundle: signed envelope + age-encrypted tar of the files.

A bundle is a directory of three files::

    envelope.json       who to whom, expiry, SHA-256 of the payload and of the manifest,
                        the audit chain head at build time — no resident data
    envelope.json.sig   Ed25519 SSHSIG signature of envelope.json (ssh-keygen -Y verify works)
    payload.tar.age     age-encrypted tar: manifest.json, manifest.json.sig, persons*.csv, persons.xlsx,
                        pfif.xml

A partner with only standard tools runs ``ssh-keygen -Y verify`` on the envelope, then
``age -d -i key.txt payload.tar.age | tar x`` and checks the files against manifest.json.
``bcpctl export open`` does all of it and refuses, before decrypting anything, a bad signature,
an expired bundle, a payload that is not the one signed, a bundle for another recipient, or an
age header with an absurd number of stanzas.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dc.clock import jst_text
from dc.errors import N_, UsageError, os_reason
from victim_support import agefile, signing
from victim_support.errors import BundleRejected, WrongRecipient

ENVELOPE = "envelope.json"
SIGNATURE = "envelope.json.sig"
PAYLOAD = "payload.tar.age"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.json.sig"
DATA_FILES = ("persons.csv", "persons-excel.csv", "persons.xlsx", "persons-cp932.csv", "pfif.xml")
#: a rehearsal's files carry 訓練 in their names (victim_support.exportdrill), so nobody mistakes one for a list
DRILL_PREFIX = "訓練-"
FORMAT = "bcpctl-export-bundle/1"
MAX_PAYLOAD_BYTES = 4 * 1024**3
_MAX_ENVELOPE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SealedBundle:
    path: Path
    payload_sha256: str
    payload_bytes: int
    manifest_sha256: str


@dataclass(frozen=True)
class OpenedBundle:
    path: Path
    out: Path
    envelope: dict[str, Any]
    manifest: dict[str, Any]
    files: dict[str, int]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar(members: list[tuple[str, bytes]], mtime: float) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(mtime), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def seal(
    out_dir: Path,
    name: str,
    *,
    files: list[tuple[str, bytes]],
    manifest: dict[str, Any],
    envelope: dict[str, Any],
    recipients: list[str],
    key: Ed25519PrivateKey,
    created_at: datetime,
) -> SealedBundle:
    """Write ``out_dir/name`` atomically (never over an existing bundle)."""
    target = out_dir / name
    if target.exists():
        raise UsageError(N_("{target} already exists; nothing was written"), target=target)
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode() + b"\n"
    members = [(MANIFEST, manifest_bytes), (MANIFEST_SIG, signing.sign(key, manifest_bytes).encode()), *files]
    payload = agefile.encrypt(_tar(members, created_at.timestamp()), recipients)
    doc = {
        "format": FORMAT,
        **envelope,
        "recipients": recipients,
        "payload": {"name": PAYLOAD, "sha256": sha256(payload), "bytes": len(payload)},
        "manifest_sha256": sha256(manifest_bytes),
        "signer": signing.fingerprint(key.public_key()),
    }
    envelope_bytes = json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    try:
        for filename, data in (
            (PAYLOAD, payload),
            (ENVELOPE, envelope_bytes),
            (SIGNATURE, signing.sign(key, envelope_bytes).encode()),
        ):
            fd = os.open(tmp / filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SealedBundle(target, doc["payload"]["sha256"], len(payload), doc["manifest_sha256"])


def read_envelope(bundle: Path, verify_key: Ed25519PublicKey) -> dict[str, Any]:
    """The envelope, after its signature verified against ``verify_key``."""
    try:
        raw = (bundle / ENVELOPE).read_bytes()[: _MAX_ENVELOPE_BYTES + 1]
        armored = (bundle / SIGNATURE).read_text(encoding="ascii", errors="replace")[:8192]
    except OSError as exc:
        raise BundleRejected(
            N_("{bundle} is not a bundle ({strerror}: {filename})"),
            bundle=bundle,
            strerror=os_reason(exc),
            filename=exc.filename,
        ) from None
    if len(raw) > _MAX_ENVELOPE_BYTES:
        raise BundleRejected(N_("the envelope is too large"))
    signing.verify(verify_key, raw, armored)
    try:
        doc = json.loads(raw)
    except ValueError:
        raise BundleRejected(N_("the envelope is not JSON")) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleRejected(
            N_("unsupported bundle format {doc!r}"), doc=doc.get("format") if isinstance(doc, dict) else None
        )
    return doc


def open_bundle(
    bundle: Path, identity_file: Path, verify_key: Ed25519PublicKey, out: Path, now: datetime
) -> OpenedBundle:
    """Verify, then decrypt into ``out``; every refusal happens before anything is written."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(N_("{out} exists and is not an empty directory; nothing was written"), out=out)
    identities = agefile.load_identities(identity_file)
    envelope = read_envelope(bundle, verify_key)
    try:
        expires = datetime.fromisoformat(envelope["expires_at"])
        payload_meta = envelope["payload"]
        want_sha, want_bytes = str(payload_meta["sha256"]), int(payload_meta["bytes"])
        recipients = [str(r) for r in envelope["recipients"]]
    except (KeyError, TypeError, ValueError):
        raise BundleRejected(N_("the envelope is missing expires_at, payload or recipients")) from None
    if now >= expires:
        raise BundleRejected(
            N_("the bundle expired at {expires}; it must be deleted, not opened"), expires=jst_text(expires)
        )
    mine = {str(identity.to_public()) for identity in identities}
    if not mine & set(recipients):
        raise WrongRecipient(
            N_("the bundle is encrypted to {recipients}, not to this identity"), recipients=", ".join(recipients)
        )
    payload_path = bundle / PAYLOAD
    size = payload_path.stat().st_size if payload_path.is_file() else -1
    if size != want_bytes or size > MAX_PAYLOAD_BYTES:
        raise BundleRejected(
            N_("the payload is {size} bytes, the signed envelope says {want_bytes}"), size=size, want_bytes=want_bytes
        )
    agefile.read_header(payload_path)
    data = payload_path.read_bytes()
    if sha256(data) != want_sha:
        raise BundleRejected(N_("the payload is not the one the envelope signs (SHA-256 differs)"))
    members = _untar(agefile.decrypt(data, identities))
    manifest_bytes = members.pop(MANIFEST, None)
    manifest_sig = members.pop(MANIFEST_SIG, None)
    if manifest_bytes is None or manifest_sig is None or sha256(manifest_bytes) != envelope.get("manifest_sha256"):
        raise BundleRejected(N_("the manifest is missing or differs from the one the envelope names"))
    signing.verify(verify_key, manifest_bytes, manifest_sig.decode("ascii", errors="replace"))
    manifest = json.loads(manifest_bytes)
    listed = manifest.get("files", {})
    if set(listed) != set(members):
        raise BundleRejected(
            N_("the payload holds {members}, the manifest lists {listed}"),
            members=sorted(members),
            listed=sorted(listed),
        )
    for filename, data_bytes in members.items():
        if sha256(data_bytes) != listed[filename].get("sha256"):
            raise BundleRejected(N_("{filename} differs from its SHA-256 in the manifest"), filename=filename)
    _write_out(out, {MANIFEST: manifest_bytes, MANIFEST_SIG: manifest_sig, **members})
    return OpenedBundle(bundle, out, envelope, manifest, {n: len(d) for n, d in members.items()})


def _untar(plain: bytes) -> dict[str, bytes]:
    allowed = {MANIFEST, MANIFEST_SIG, *DATA_FILES, *(DRILL_PREFIX + name for name in DATA_FILES)}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
            for member in tar:
                if not member.isfile() or member.name not in allowed or member.name in found:
                    raise BundleRejected(N_("the payload holds an unexpected entry {name!r}"), name=member.name)
                handle = tar.extractfile(member)
                found[member.name] = handle.read() if handle else b""
    except tarfile.TarError as exc:
        raise BundleRejected(N_("the payload is not a valid tar archive ({exc})"), exc=exc) from None
    return found


def _write_out(out: Path, files: dict[str, bytes]) -> None:
    if out.exists() and any(out.iterdir()):
        raise UsageError(N_("{out} is not empty; nothing was written"), out=out)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for filename, data in files.items():
        fd = os.open(out / filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
