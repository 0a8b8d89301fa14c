"""Hostile finding: well-formed but bogus key slots, dated old, lock every passphrase out.

Slots are tried oldest first by the storage's modification time and at most 32 Argon2id
derivations run per unlock. Whoever can write ``keys/`` and set a modification time (a local
or NFS repository, the replicator's SFTP account: SFTP ``setstat`` sets mtimes) plants 33
objects that parse as slots (valid JSON, kdf within bounds, wrapped key of the right length)
with an mtime of 1970. Every passphrase and the escrow shares then fail with "wrong
passphrase", and ``key remove`` cannot clear them because it needs an unlock first. The
signed manifest already names the genuine slots' hashes: those could be tried first.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from tests.conftest import Cli


def _plant(keys: Path, count: int, kind: str) -> None:
    genuine = json.loads(next(p for p in sorted(keys.iterdir())).read_text())
    for _ in range(count):
        slot_id = secrets.token_hex(8)
        doc = dict(genuine, id=slot_id, kind=kind, label="planted")
        doc["kdf"] = dict(genuine["kdf"], salt=base64.b64encode(os.urandom(16)).decode())
        doc["wrapped"] = base64.b64encode(os.urandom(len(base64.b64decode(genuine["wrapped"])))).decode()
        path = keys / slot_id
        path.write_text(json.dumps(doc))
        os.utime(path, (0, 0))


def test_planted_old_slots_never_lock_the_genuine_passphrase_out(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    _plant(repo / "keys", 33, "passphrase")
    done = cli("snapshots", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    # and the operator can clean them up with the CLI
    listed = cli("key", "list", "--repo", str(repo), "--json")
    assert listed.returncode == 0, listed.stderr
