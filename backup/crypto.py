"""Keys and sealing: the only module that touches ciphers.

* The master key holds independent secrets: an encryption key, the chunk-id key (keyed
  BLAKE3, so storage cannot confirm that a known file is stored) and the chunker seed (so
  chunk boundaries do not leak content). They never leave the process unencrypted.
* Every pack and sealed object gets its own AES-256-GCM subkey, HKDF(encryption key, random
  32-byte salt). Nonces inside a pack are counters, so nonce reuse would need a salt
  collision (2^-128), and no single GCM key ever approaches its 2^32 random-nonce limit.
* Associated data binds every ciphertext to the repository id and to what it is (a blob
  with its chunk id, a pack header, an index, a snapshot): a blob moved to another place, or
  an index presented as a snapshot, fails authentication.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backup.errors import CorruptObject
from dc.errors import N_

KEY_BYTES = 32
SALT_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
CHUNK_ID_BYTES = 32

_PACK_INFO = b"bcpctl/v1/pack"
_OBJECT_INFO = b"bcpctl/v1/object"


@dataclass(frozen=True, repr=False)
class MasterKey:
    """The repository's secrets. ``repr`` is masked so keys never reach a log by accident."""

    encryption: bytes
    chunk_id: bytes
    chunker_seed: int

    @classmethod
    def generate(cls) -> MasterKey:
        # The seed XORs pyfastcdc's 64-bit gear table; keep it non-zero (0 means "default table").
        return cls(secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES), secrets.randbits(63) | 1)

    def to_bytes(self) -> bytes:
        return self.encryption + self.chunk_id + self.chunker_seed.to_bytes(8, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> MasterKey:
        if len(raw) != 2 * KEY_BYTES + 8:
            raise CorruptObject(N_("master key material has the wrong length"))
        return cls(raw[:KEY_BYTES], raw[KEY_BYTES : 2 * KEY_BYTES], int.from_bytes(raw[2 * KEY_BYTES :], "big"))

    def __repr__(self) -> str:
        return "MasterKey(<secret>)"

    def chunk_id_of(self, data: bytes | memoryview) -> bytes:
        """Keyed BLAKE3 of a chunk's plaintext."""
        return blake3.blake3(data, key=self.chunk_id).digest()

    def subkey(self, salt: bytes, purpose: bytes) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=purpose)
        return AESGCM(hkdf.derive(self.encryption))

    def pack_cipher(self, salt: bytes) -> AESGCM:
        return self.subkey(salt, _PACK_INFO)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """A self-contained ciphertext: ``salt || AES-GCM(subkey(salt), nonce 0, plaintext, aad)``.

        The random salt gives every sealed object a fresh key, so the fixed nonce is safe.
        """
        salt = os.urandom(SALT_BYTES)
        return salt + self.subkey(salt, _OBJECT_INFO).encrypt(bytes(NONCE_BYTES), plaintext, aad)

    def open(self, sealed: bytes, aad: bytes, what: str) -> bytes:
        if len(sealed) < SALT_BYTES + TAG_BYTES:
            raise CorruptObject(N_("{what} is truncated ({n_sealed} bytes)"), what=what, n_sealed=len(sealed))
        salt = sealed[:SALT_BYTES]
        try:
            return self.subkey(salt, _OBJECT_INFO).decrypt(bytes(NONCE_BYTES), sealed[SALT_BYTES:], aad)
        except InvalidTag:
            raise CorruptObject(
                N_("{what} fails authentication (corrupted, truncated or not of this repository)"), what=what
            ) from None


def counter_nonce(index: int) -> bytes:
    return index.to_bytes(NONCE_BYTES, "big")


#: the pack header's nonce, outside the range of blob counters.
HEADER_NONCE = b"\xff" * NONCE_BYTES
