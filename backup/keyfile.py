"""Key files: the credential of a database host, which unlocks once per WAL file.

PostgreSQL starts ``archive_command`` once per WAL segment and ``restore_command`` once per
segment replayed. With a passphrase each of them pays the Argon2id derivation that makes a
person's passphrase expensive to guess (about 0.2 s of CPU and 64 MiB), a second or more of
wall time on a busy host. A key file holds 32 random bytes instead, made by
``bcpctl key add --new-key-file PATH``; its key slot derives the key-encryption key with HKDF
(:mod:`backup.keys`), which costs microseconds.

Threat model. The database host must be able to write the archive unattended, so whatever
unlocks it sits on that host's disk either way: a passphrase in ``password_file`` or this key.
Against an attacker who reads that file the two are equal (both give the master key). Against
one who only reads the repository (the offsite, a stolen disk of the storage), a 256-bit random
secret cannot be guessed, with or without stretching; a passphrase can, which is why passphrase
slots keep Argon2id. What the key file changes is where it may be read from, so it is held to
OpenSSH's rule for private keys: a regular file owned by the user reading it (or root), with no
permission for group or others; anything else is refused (exit 3) before it is used, so a
key that may already have leaked is never relied on silently. The key never appears in a
message, a log or an exception. Revoke one by removing its slot (``bcpctl key remove``).

Exit codes: a key file that is missing, unreadable or not a key file is a usage error (2);
permissions too open or a key that opens no slot is an authentication error (3).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from backup.keyslots import MAX_LABEL_CHARS, add_slot
from backup.opening import unlock, unlocked_repository
from backup.repository import Repository, read_config
from backup.slotformat import KEYFILE_KIND, KEYFILE_SECRET_BYTES
from dc.errors import N_, AuthError, Message, UsageError, os_reason
from storage.backend import Backend

#: a key file is two short lines; anything much larger is the wrong file
_MAX_BYTES = 4096
_HEADER = "# bcpctl key file (32 random bytes, hex). Mode 0600; never copy it off this host.\n"


class KeyFileExposed(AuthError):
    """The key file is readable or writable by others than its owner (exit 3)."""


def _parse(text: str, path: Path) -> bytes:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    secret = b""
    if len(lines) == 1:
        with suppress(ValueError):
            secret = bytes.fromhex(lines[0])
    if len(secret) != KEYFILE_SECRET_BYTES:
        raise UsageError(
            N_("{path} is not a bcpctl key file (one line of {digits} hex digits)"),
            path=path,
            digits=2 * KEYFILE_SECRET_BYTES,
        )
    return secret


def read_key_file(path: Path) -> bytes:
    """The secret of the key file at ``path``, once what was opened is judged private.

    Judged on the opened descriptor (``fstat``), so a file swapped after a check cannot slip
    through; ``O_NONBLOCK`` keeps a FIFO from hanging the push.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise UsageError(N_("cannot read key file {path}: {strerror}"), path=path, strerror=os_reason(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(N_("key file {path} is not a regular file"), path=path)
        if info.st_mode & 0o077:
            raise KeyFileExposed(
                N_(
                    "key file {path} is accessible by others (mode {mode}): refused; chmod 600 it, and "
                    "replace it if others may have read it"
                ),
                path=path,
                mode=f"{stat.S_IMODE(info.st_mode):04o}",
            )
        if info.st_uid not in (os.geteuid(), 0):
            raise KeyFileExposed(
                N_("key file {path} belongs to another user (uid {st_uid}): refused"), path=path, st_uid=info.st_uid
            )
        data = os.read(fd, _MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(N_("cannot read key file {path}: {strerror}"), path=path, strerror=os_reason(exc)) from None
    finally:
        os.close(fd)
    if len(data) > _MAX_BYTES:
        raise UsageError(N_("{path} is not a bcpctl key file (larger than {limit} bytes)"), path=path, limit=_MAX_BYTES)
    try:
        return _parse(data.decode("ascii"), path)
    except UnicodeDecodeError:
        raise UsageError(N_("{path} is not a bcpctl key file (not ASCII text)"), path=path) from None


def _default_label(path: Path) -> str:
    """``key file <name>``, printable and bounded whatever the file is called (a POSIX name may
    hold a newline or an escape sequence and run to 255 bytes)."""
    name = "".join(c if c.isprintable() else "?" for c in path.name)
    return f"key file {name}"[:MAX_LABEL_CHARS]


def add_key_file(repo: Repository, path: Path, *, label: str = "") -> str:
    """Create a new key file at ``path`` (never over an existing file) and a slot that it opens.

    The file is written and synced before the slot exists, so a slot never outlives the only
    copy of its key; if the slot cannot be stored, the file is removed again.
    """
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise UsageError(
            N_("a key slot label must be printable and at most {MAX_LABEL_CHARS} characters"),
            MAX_LABEL_CHARS=MAX_LABEL_CHARS,
        )
    secret = os.urandom(KEYFILE_SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise UsageError(N_("cannot create key file {path}: {strerror}"), path=path, strerror=os_reason(exc)) from None
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (_HEADER + secret.hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return add_slot(repo, secret, kind=KEYFILE_KIND, label=label or _default_label(path))
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@contextmanager
def open_with_key_file(
    backend: Backend, path: Path, *, manifest_key: str | None = None, sync: bool = False
) -> Iterator[Repository]:
    """The repository unlocked with the key file at ``path``, without syncing the index cache
    unless ``sync`` (a reader of snapshots needs it; WAL objects are self-contained).

    Only key-file slots are tried: the key is never fed to a passphrase slot's derivation.
    """
    secret = read_key_file(path)
    config, raw = read_config(backend)
    key = unlock(
        backend,
        secret,
        config,
        raw,
        kinds=(KEYFILE_KIND,),
        refusal=Message(N_("wrong key file: {path} opens no key slot of {url}"), path=path, url=backend.url),
        manifest_key=manifest_key,
    )
    with unlocked_repository(backend, config, raw, key, sync=sync, sign_on_close=True) as repo:
        yield repo
