"""Ed25519 signatures in OpenSSH's SSHSIG format, so a partner can also check with ``ssh-keygen``.

The tenant signs each bundle's envelope (and the manifest inside it) with its Ed25519 key. The
signature is a standard armored ``SSH SIGNATURE`` (PROTOCOL.sshsig, namespace
``bcpctl-export``), which ``ssh-keygen -Y verify`` accepts: a receiving municipality needs
nothing of ours to check who sent a list. Keys come from a file path or an environment
variable named in the configuration, never from the configuration itself.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from dc.errors import N_, UsageError
from dc.secrets import read_secret_bytes, secret_from_env
from victim_support.errors import SignatureInvalid
from victim_support.settings import ExportSettings, env_name, resolve

NAMESPACE = "bcpctl-export"
KEY_ENV_PREFIX = "BCPCTL_EXPORT_SIGNING_KEY"
_MAGIC = b"SSHSIG"
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise ValueError("truncated")
    (length,) = struct.unpack(">I", buf[pos : pos + 4])
    end = pos + 4 + length
    if end > len(buf):
        raise ValueError("truncated")
    return buf[pos + 4 : end], end


def _key_blob(public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(b"ssh-ed25519") + _string(raw)


def public_line(public: Ed25519PublicKey) -> str:
    """The ``ssh-ed25519 AAAA…`` form partners pin."""
    return "ssh-ed25519 " + base64.b64encode(_key_blob(public)).decode()


def fingerprint(public: Ed25519PublicKey) -> str:
    """OpenSSH's ``SHA256:…`` fingerprint."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(_key_blob(public)).digest()).decode().rstrip("=")


def parse_private_key(data: bytes, where: str) -> Ed25519PrivateKey:
    key: PrivateKeyTypes | serialization.SSHPrivateKeyTypes
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(N_("{where}: not an unencrypted Ed25519 private key ({exc})"), where=where, exc=exc) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(N_("{where}: the signing key must be Ed25519"), where=where)
    return key


def load_signing_key(settings: ExportSettings, tenant_id: str, config_dir: Path | None = None) -> Ed25519PrivateKey:
    """The tenant's signing key from its configured file, else its environment variable."""
    tenant = settings.tenant(tenant_id)
    if tenant.signing_key_file:
        path = resolve(tenant.signing_key_file, config_dir)
        return parse_private_key(read_secret_bytes(path, "signing key"), str(path))
    name = tenant.signing_key_env or env_name(KEY_ENV_PREFIX, tenant_id)
    value = secret_from_env(name, "signing key")
    if not value:
        raise UsageError(
            N_("no signing key for {tenant_id}: set ${name} or exports.tenants.{tenant_id}.signing_key_file"),
            tenant_id=tenant_id,
            name=name,
        )
    return parse_private_key(value.encode(), f"${name}")


def load_verify_key(text: str) -> Ed25519PublicKey:
    """A verify key given as ``ssh-ed25519 AAAA…`` or as the path of a file holding that line."""
    candidate = text.strip()
    if not candidate.startswith("ssh-ed25519 ") and Path(candidate).is_file():
        candidate = Path(candidate).read_text(encoding="utf-8").strip()
    parts = candidate.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise UsageError(N_("--verify-key must be an 'ssh-ed25519 AAAA…' key or a file holding one"))
    try:
        blob = base64.b64decode(parts[1], validate=True)
        kind, pos = _read_string(blob, 0)
        raw, pos = _read_string(blob, pos)
        if kind != b"ssh-ed25519" or len(raw) != 32 or pos != len(blob):
            raise ValueError("not an Ed25519 key")
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise UsageError(N_("--verify-key is malformed ({exc})"), exc=exc) from None


def _signed_data(message: bytes, namespace: str) -> bytes:
    digest = hashlib.sha512(message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(b"sha512") + _string(digest)


def sign(key: Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG signature of ``message``."""
    signature = key.sign(_signed_data(message, namespace))
    blob = (
        _MAGIC
        + struct.pack(">I", 1)
        + _string(_key_blob(key.public_key()))
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(b"ssh-ed25519") + _string(signature))
    )
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


def verify(public: Ed25519PublicKey, message: bytes, armored: str, namespace: str = NAMESPACE) -> None:
    """Raise :class:`SignatureInvalid` unless ``armored`` is ``public``'s signature over ``message``."""
    try:
        body = armored.strip()
        if not body.startswith(_BEGIN) or not body.endswith(_END) or len(body) > 4096:
            raise ValueError("not an armored SSH signature")
        blob = base64.b64decode("".join(body[len(_BEGIN) : -len(_END)].split()), validate=True)
        if blob[:6] != _MAGIC or blob[6:10] != struct.pack(">I", 1):
            raise ValueError("not an SSHSIG v1 blob")
        key_blob, pos = _read_string(blob, 10)
        ns, pos = _read_string(blob, pos)
        _reserved, pos = _read_string(blob, pos)
        hash_alg, pos = _read_string(blob, pos)
        sig_blob, pos = _read_string(blob, pos)
        kind, spos = _read_string(sig_blob, 0)
        raw_sig, spos = _read_string(sig_blob, spos)
    except ValueError as exc:
        raise SignatureInvalid(N_("the envelope signature is malformed ({exc})"), exc=exc) from None
    if key_blob != _key_blob(public):
        raise SignatureInvalid(N_("the envelope is signed by a different key than --verify-key"))
    if ns.decode(errors="replace") != namespace or hash_alg != b"sha512" or kind != b"ssh-ed25519":
        raise SignatureInvalid(N_("the envelope signature has the wrong namespace or algorithm"))
    try:
        public.verify(raw_sig, _signed_data(message, namespace))
    except InvalidSignature:
        raise SignatureInvalid(N_("the envelope signature does not verify: the bundle was altered")) from None
