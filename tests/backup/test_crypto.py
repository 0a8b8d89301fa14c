"""Sealed objects and key slots."""

from __future__ import annotations

import pytest

from backup.crypto import MasterKey
from backup.errors import CorruptObject, WrongPassword
from backup.keys import config_digest, unwrap, wrap
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF


def test_seal_round_trip_and_binding() -> None:
    key = MasterKey.generate()
    sealed = key.seal(b"index bytes", b"aad-index")
    assert key.open(sealed, b"aad-index", "x") == b"index bytes"
    with pytest.raises(CorruptObject):
        key.open(sealed, b"aad-snapshot", "x")  # an index presented as a snapshot
    with pytest.raises(CorruptObject):
        key.open(sealed[:-1], b"aad-index", "x")
    with pytest.raises(CorruptObject):
        MasterKey.generate().open(sealed, b"aad-index", "x")


def test_master_key_never_in_repr() -> None:
    key = MasterKey.generate()
    assert key.encryption.hex() not in repr(key) and "secret" in repr(key)


def test_key_slot_wrong_password_and_tampered_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    backend = LocalBackend(tmp_path, create=True)
    master = MasterKey.generate()
    digest = config_digest(b"config-v1")
    slot_id, slot = wrap(master, b"right", repo_id="ab" * 16, config_digest=digest, kdf=FAST_KDF)
    backend.save(f"keys/{slot_id}", slot)
    opened = unwrap(backend, b"right", repo_id="ab" * 16, config_digest=digest)
    assert opened.master.to_bytes() == master.to_bytes() and opened.slot_id == slot_id and opened.skipped == ()
    with pytest.raises(WrongPassword):
        unwrap(backend, b"wrong", repo_id="ab" * 16, config_digest=digest)
    with pytest.raises(CorruptObject):
        unwrap(backend, b"right", repo_id="ab" * 16, config_digest=config_digest(b"config-v2"))
    with pytest.raises(WrongPassword):  # a slot copied into another repository does not open it
        unwrap(backend, b"right", repo_id="cd" * 16, config_digest=digest)


def test_parallel_unlocks_with_the_default_kdf_finish() -> None:
    """Several threads unwrapping key slots at once (serve's parallel jobs) must all finish.

    OpenSSL's multi-lane Argon2id deadlocked when two threads derived at once; run in a child
    so a regression fails on the timeout instead of hanging the suite.
    """
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import os, threading
        from backup.keys import _kek
        from backup.slotformat import DEFAULT_KDF
        results = []
        def derive():
            results.append(_kek(b"passphrase", os.urandom(16), DEFAULT_KDF))
        threads = [threading.Thread(target=derive) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(results), len(set(results)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3"]
