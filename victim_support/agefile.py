"""age (age-encryption.org/v1) encryption to a partner, and a bounded look at untrusted headers.

Encryption is X25519 through ``pyrage``, so the partner can decrypt with the standard ``age``
command and nothing of ours. age gives confidentiality, not sender authentication: anyone with
the partner's public key can encrypt to it, so bundles are signed separately (``signing``).

Neither reference age implementation limits the number of header stanzas (Crypt::Age advisory,
2026): a hostile file could make a decryptor try thousands of X25519 operations or buffer a
huge header. :func:`check_header` reads at most ``MAX_HEADER_BYTES`` and refuses more than
``MAX_STANZAS`` stanzas before anything is decrypted.
"""

from __future__ import annotations

from pathlib import Path

import pyrage

from dc.errors import N_, UsageError
from victim_support.errors import BundleRejected

MAGIC = b"age-encryption.org/v1\n"
#: A bundle has one stanza per recipient (partner, optional escrow) plus one grease stanza.
MAX_STANZAS = 16
MAX_HEADER_BYTES = 16 * 1024


def encrypt(data: bytes, recipients: list[str]) -> bytes:
    try:
        parsed = [pyrage.x25519.Recipient.from_str(r) for r in recipients]
    except pyrage.RecipientError as exc:
        raise UsageError(N_("invalid age recipient: {exc}"), exc=exc) from None
    return pyrage.encrypt(data, parsed)


def check_header(head: bytes) -> int:
    """Count the stanzas of an age header in ``head`` (the file's first bytes); refuse absurd ones."""
    if not head.startswith(MAGIC):
        raise BundleRejected(N_("the payload is not an age (age-encryption.org/v1) file"))
    stanzas = 0
    pos = len(MAGIC)
    while True:
        end = head.find(b"\n", pos)
        if end < 0:
            raise BundleRejected(
                N_("the age header is larger than {MAX_HEADER_BYTES} bytes or truncated: refusing"),
                MAX_HEADER_BYTES=MAX_HEADER_BYTES,
            )
        line = head[pos:end]
        pos = end + 1
        if line.startswith(b"--- "):
            return stanzas
        if line.startswith(b"-> "):
            stanzas += 1
            if stanzas > MAX_STANZAS:
                raise BundleRejected(
                    N_("the age header has more than {MAX_STANZAS} recipient stanzas: refusing"),
                    MAX_STANZAS=MAX_STANZAS,
                )
        elif len(line) > 64:
            raise BundleRejected(N_("the age header is malformed"))


def read_header(path: Path) -> int:
    with open(path, "rb") as handle:
        return check_header(handle.read(MAX_HEADER_BYTES))


def load_identities(path: Path) -> list[pyrage.x25519.Identity]:
    """X25519 identities from an ``age-keygen`` key file (comments and blank lines ignored)."""
    from dc.secrets import read_secret_text

    text = read_secret_text(path, "identity")
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise UsageError(N_("{path}: not an age X25519 identity file (AGE-SECRET-KEY-1…)"), path=path) from None
    if not identities:
        raise UsageError(N_("{path}: holds no age identity"), path=path)
    return identities


def decrypt(data: bytes, identities: list[pyrage.x25519.Identity]) -> bytes:
    from victim_support.errors import WrongRecipient

    try:
        return pyrage.decrypt(data, identities)
    except pyrage.DecryptError as exc:
        text = str(exc).lower()
        if "no matching" in text or "matching key" in text:
            raise WrongRecipient(N_("the bundle is not encrypted to this identity")) from None
        raise BundleRejected(N_("the payload does not decrypt: {exc}"), exc=exc) from None
