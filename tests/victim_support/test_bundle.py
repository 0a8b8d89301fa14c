"""Sealing and opening bundles: every refusal happens before anything is written."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.errors import UsageError
from tests.victim_support.conftest import write_identity
from victim_support import agefile, signing
from victim_support.bundle import ENVELOPE, PAYLOAD, SIGNATURE, open_bundle, seal, sha256
from victim_support.errors import BundleRejected, SignatureInvalid, WrongRecipient

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CSV = "person_ref,name\r\nab12,鈴木　一郎\r\n".encode()


@pytest.fixture
def made(tmp_path: Path):  # type: ignore[no-untyped-def]
    recipient = write_identity(tmp_path / "partner.key")
    key = Ed25519PrivateKey.generate()
    bundle = _seal(tmp_path / "out", key, recipient, "b1")
    return bundle, tmp_path / "partner.key", key


def _seal(out: Path, key: Ed25519PrivateKey, recipient: str, name: str, expires: datetime | None = None) -> Path:
    files = [("persons.csv", CSV)]
    manifest = {"files": {"persons.csv": {"sha256": sha256(CSV), "bytes": len(CSV)}}, "counts": {"rows": 1}}
    sealed = seal(
        out,
        name,
        files=files,
        manifest=manifest,
        envelope={"request_id": "exp-1", "expires_at": (expires or NOW + timedelta(days=90)).isoformat()},
        recipients=[recipient],
        key=key,
        created_at=NOW,
    )
    return sealed.path


def test_round_trip(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, key = made
    assert sorted(p.name for p in bundle.iterdir()) == [ENVELOPE, SIGNATURE, PAYLOAD]
    assert all(p.stat().st_mode & 0o077 == 0 for p in bundle.iterdir())
    opened = open_bundle(bundle, identity, key.public_key(), tmp_path / "got", NOW)
    assert (tmp_path / "got" / "persons.csv").read_bytes() == CSV
    assert opened.manifest["counts"] == {"rows": 1}
    assert opened.files == {"persons.csv": len(CSV)}
    with pytest.raises(UsageError, match="already exists"):
        _seal(bundle.parent, key, "age1" + "q" * 58, bundle.name)


def _refused(bundle: Path, identity: Path, public, out: Path, now: datetime = NOW):  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        open_bundle(bundle, identity, public, out, now)
    assert not out.exists() or not any(out.iterdir()), "a refused bundle must write nothing"
    return info.value


def test_bad_signature_is_refused(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, key = made
    envelope = (bundle / ENVELOPE).read_text().replace("exp-1", "exp-2")
    (bundle / ENVELOPE).write_text(envelope)
    assert isinstance(_refused(bundle, identity, key.public_key(), tmp_path / "o"), SignatureInvalid)


def test_another_signer_is_refused(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, _key = made
    error = _refused(bundle, identity, Ed25519PrivateKey.generate().public_key(), tmp_path / "o")
    assert isinstance(error, SignatureInvalid) and "different key" in str(error)


def test_wrong_recipient_is_refused(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, _identity, key = made
    write_identity(tmp_path / "stranger.key")
    error = _refused(bundle, tmp_path / "stranger.key", key.public_key(), tmp_path / "o")
    assert isinstance(error, WrongRecipient)


def test_expired_bundle_is_refused(tmp_path: Path) -> None:
    recipient = write_identity(tmp_path / "partner.key")
    key = Ed25519PrivateKey.generate()
    bundle = _seal(tmp_path / "out", key, recipient, "old", expires=NOW - timedelta(seconds=1))
    error = _refused(bundle, tmp_path / "partner.key", key.public_key(), tmp_path / "o")
    assert isinstance(error, BundleRejected) and "expired" in str(error)


def test_swapped_payload_is_refused(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, key = made
    recipient = agefile.load_identities(identity)[0].to_public()
    (bundle / PAYLOAD).write_bytes(agefile.encrypt(b"x" * len((bundle / PAYLOAD).read_bytes()), [str(recipient)]))
    error = _refused(bundle, identity, key.public_key(), tmp_path / "o")
    assert isinstance(error, BundleRejected)


def _resign_with_payload(bundle: Path, key: Ed25519PrivateKey, payload: bytes, **changes: object) -> None:
    (bundle / PAYLOAD).write_bytes(payload)
    doc = json.loads((bundle / ENVELOPE).read_bytes())
    doc["payload"] = {"name": PAYLOAD, "sha256": sha256(payload), "bytes": len(payload)}
    doc.update(changes)
    raw = json.dumps(doc).encode()
    (bundle / ENVELOPE).write_bytes(raw)
    (bundle / SIGNATURE).write_text(signing.sign(key, raw))


def test_absurd_stanza_count_is_refused_even_when_signed(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, key = made
    stanzas = b"".join(b"-> X25519 " + b"A" * 43 + b"\n" + b"B" * 43 + b"\n" for _ in range(5000))
    evil = b"age-encryption.org/v1\n" + stanzas + b"--- " + b"C" * 43 + b"\n" + b"\0" * 32
    _resign_with_payload(bundle, key, evil)
    error = _refused(bundle, identity, key.public_key(), tmp_path / "o")
    assert isinstance(error, BundleRejected) and "stanzas" in str(error)


def test_unexpected_tar_members_are_refused(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, key = made
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    recipient = str(agefile.load_identities(identity)[0].to_public())
    _resign_with_payload(bundle, key, agefile.encrypt(buffer.getvalue(), [recipient]))
    error = _refused(bundle, identity, key.public_key(), tmp_path / "o")
    assert isinstance(error, BundleRejected) and "unexpected entry" in str(error)


def test_output_directory_must_be_empty(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bundle, identity, key = made
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an empty directory"):
        open_bundle(bundle, identity, key.public_key(), tmp_path / "o", NOW)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["keep.txt"]


def test_not_a_bundle(tmp_path: Path) -> None:
    write_identity(tmp_path / "k")
    with pytest.raises(BundleRejected, match="is not a bundle"):
        open_bundle(tmp_path, tmp_path / "k", Ed25519PrivateKey.generate().public_key(), tmp_path / "o", NOW)
