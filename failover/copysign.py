"""Control-state copies signed by the shipping site's controller, verified before promotion.

A copy is a repository snapshot, and the repository key writes snapshots: every backup operator
holds it, and none of them may write the control database (hostile finding 13 planted a forged
``_control`` snapshot and had it promoted). So the controller that ships a copy signs a statement
of what it holds — the site, the copy's time, the database file's SHA-256 (what
:func:`failover.control_copies.check_database` proves the restored file against) and the row
counts — with an Ed25519 key the repository key does not give (``sites.<site>.control_signing_key_file``).
The signature travels in the snapshot's tags, inside the encrypted, authenticated snapshot.
Promotion checks it against ``sites.<site>.control_public_key``: a copy whose signature is missing
or wrong is skipped like a damaged one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backup.errors import VerificationFailed
from dc.config import Consortium
from dc.errors import N_, ConfigError, Message, UsageError, os_reason

#: the snapshot tag holding the hex Ed25519 signature of a copy's statement
SIGNATURE_TAG = "control_signature"
_DOMAIN = b"bcpctl control-state copy v1\n"

#: ``(copy time, SHA-256 of the database file, row counts) -> extra snapshot tags``
Sealer = Callable[[datetime, str, dict[str, int]], dict[str, str]]


def statement_bytes(site: str, time: datetime, sha256: str, tables: dict[str, int]) -> bytes:
    """What a signature covers; the domain prefix keeps it from passing for any other signed bytes."""
    body = {"site": site, "time": time.isoformat(), "sha256": sha256, "tables": tables}
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The site's signing key from its PEM file (read like every secret: a regular file, bounded)."""
    from dc.secrets import read_secret_bytes

    data = read_secret_bytes(path, "control signing key", error=ConfigError)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            N_("control signing key file {path} is not an unencrypted PEM key"), path=os.fsdecode(path)
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(N_("control signing key file {path} does not hold an Ed25519 key"), path=os.fsdecode(path))
    return key


def write_new_key(path: str | os.PathLike[str]) -> str:
    """Generate a signing key into a new file only its owner can read (never replacing one): its public key, hex."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(N_("{path} exists: keygen never replaces a signing key"), path=os.fsdecode(path)) from None
    except OSError as exc:
        raise UsageError(
            N_("cannot create {path}: {strerror}"), path=os.fsdecode(path), strerror=os_reason(exc)
        ) from None
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return public_hex(key)


def sealer(config: Consortium, site: str, config_dir: Path | None) -> Sealer | None:
    """What signs ``site``'s copies, or ``None`` when the site has no signing key configured."""
    file = config.sites[site].control_signing_key_file
    if not file:
        return None
    path = Path(file) if config_dir is None or Path(file).is_absolute() else config_dir / file
    key = load_signing_key(path)
    expected = config.sites[site].control_public_key
    if expected and expected != public_hex(key):
        raise ConfigError(
            N_(
                "sites.{site}.control_signing_key_file does not match sites.{site}.control_public_key: "
                "copies it signs would not verify"
            ),
            site=site,
        )

    def seal(time: datetime, sha256: str, tables: dict[str, int]) -> dict[str, str]:
        return {SIGNATURE_TAG: key.sign(statement_bytes(site, time, sha256, tables)).hex()}

    return seal


def verify_copy(
    public_key: str, tags: dict[str, str], site: str, time: datetime, sha256: str, tables: dict[str, int]
) -> None:
    """Raise :class:`VerificationFailed` unless ``tags`` carry ``site``'s signature over exactly this copy."""
    signature = tags.get(SIGNATURE_TAG)
    if not signature:
        raise VerificationFailed(
            N_("the copy is not signed by {site}'s controller (no {SIGNATURE_TAG} tag)"),
            site=site,
            SIGNATURE_TAG=SIGNATURE_TAG,
        )
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(signature), statement_bytes(site, time, sha256, tables)
        )
    except (InvalidSignature, ValueError):
        raise VerificationFailed(
            N_(
                "the copy's signature does not verify with sites.{site}.control_public_key (signed by "
                "another key, or its contents differ from what was signed)"
            ),
            site=site,
        ) from None


def config_advice(config: Consortium) -> list[str]:
    """``config check``'s warnings: sites whose shipped copies would be promoted unauthenticated."""
    from failover.controlplane import plane_kind

    if plane_kind(config) != "sqlite-shipping":
        return []
    return [unauthenticated_warning(name) for name, site in config.sites.items() if not site.control_public_key]


def unauthenticated_warning(site: str) -> str:
    return Message(
        N_(
            "control-state copies of {site} are not authenticated: anyone with the repository key can plant one; "
            "set sites.{site}.control_public_key (bcpctl control keygen)"
        ),
        site=site,
    )
