"""PostgreSQL's WAL in the repository: ``archive_command`` and ``restore_command`` (DESIGN "backup/").

Each file PostgreSQL archives (a segment, a ``.history``, ``.backup`` or ``.partial`` file)
becomes one sealed object, compressed like a blob and encrypted with its own key::

    wal/<system>/<file name>/<sha256 of the stored bytes>

The directory is the system's name: the signed manifest already names every snapshot's system
in the clear, so hiding it here would hide nothing, and with it replication measures each
system's recovery point without a key. The name stays content-addressed, so replication and
``check --integrity-only`` verify every WAL object without a key. The sealed payload names the
system and the file and carries the file's SHA-256, so an object moved under another name or
system is refused on the way back.

PostgreSQL recycles a segment once ``archive_command`` exits 0, so a push returns only after
the backend holds the object durably (the local backend fsyncs file and directories, S3
acknowledges a PUT once stored). A push that dies anywhere earlier exits non-zero, and the
object it was writing is either absent or whole (the backend writes under a temporary name
and renames). Archived history is never overwritten: pushing a file the archive already holds
with the same bytes succeeds without writing, with other bytes is an error.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from backup import compress
from backup.errors import CorruptObject
from backup.repository import Repository
from backup.walnames import PushResult, WalFile, check_name
from dc.errors import N_, BcpError, ProblemFound, UsageError, os_reason
from storage.capabilities import as_capability
from storage.errors import ObjectNotFound
from storage.local import LocalBackend

WAL_PREFIX = "wal/"
#: the sealed kind (associated data) of a WAL object
WAL_KIND = "wal"
_SYSTEM = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
#: the largest segment PostgreSQL can be built with (``--with-segsize`` up to 1 GiB)
MAX_WAL_FILE = 1 << 30
_SEPARATOR = b"\n"


class WalConflict(ProblemFound):
    """The archive holds this file with other bytes: history is never overwritten (exit 1)."""


class WalNotFound(ProblemFound):
    """The archive does not hold the file asked for (exit 1: PostgreSQL reads that as 'no such file')."""


def system_key(repo: Repository, system: str) -> str:
    """The directory of ``system``'s WAL: its name, once it is one a configuration can hold."""
    if not _SYSTEM.fullmatch(system):
        raise UsageError(N_("'{system}' is not a system name (lowercase letters, digits, - and _)"), system=system)
    return system


def _prefix(repo: Repository, system: str, name: str) -> str:
    return f"{WAL_PREFIX}{system_key(repo, system)}/{name}/"


def _seal_payload(system: str, name: str, data: bytes, digest: str, when: datetime) -> bytes:
    payload, flags = compress.encode(data)
    header = {
        "system": system,
        "name": name,
        "size": len(data),
        "sha256": digest,
        "flags": flags,
        "pushed": when.isoformat(timespec="seconds"),
    }
    return orjson.dumps(header) + _SEPARATOR + bytes(payload)


def _open_payload(raw: bytes, key: str) -> tuple[dict[str, object], bytes]:
    head, sep, body = raw.partition(_SEPARATOR)
    try:
        header = orjson.loads(head)
        if not sep or not isinstance(header, dict):
            raise ValueError("no header")
        int(header["size"]), int(header["flags"]), str(header["sha256"]), str(header["name"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise CorruptObject(N_("{key} holds no WAL file header"), key=key) from None
    return header, body


def read_object(repo: Repository, key: str, *, with_data: bool = True) -> tuple[WalFile, bytes]:
    """The file a WAL object holds, authenticated and (``with_data``) decompressed and hashed."""
    prefix, _, object_name = key.rpartition("/")
    raw = repo.load_sealed(prefix + "/", WAL_KIND, object_name)
    header, body = _open_payload(raw, key)
    found = WalFile(
        str(header.get("system")),
        str(header["name"]),
        int(header["size"]),  # type: ignore[call-overload]
        str(header["sha256"]),
        str(header.get("pushed", "")),
        key,
    )
    if not key.startswith(f"{WAL_PREFIX}{system_key(repo, found.system)}/{found.name}/"):
        raise CorruptObject(
            N_("{key} holds {name} of system {system}: moved here, not read"),
            key=key,
            name=found.name,
            system=found.system,
        )
    if not with_data:
        return found, b""
    data = compress.decode(body, int(header["flags"]), found.size, key)  # type: ignore[call-overload]
    if hashlib.sha256(data).hexdigest() != found.sha256:
        raise CorruptObject(N_("{key} does not match the SHA-256 its header records"), key=key)
    return found, data


def _stored_copies(
    repo: Repository, system: str, name: str
) -> Iterator[tuple[WalFile | None, str, BcpError | None, bytes]]:
    """Every object holding ``name``: (file or None, key, why it is unusable, the file's bytes)."""
    for info in sorted(repo.backend.list(_prefix(repo, system, name)), key=lambda i: i.key):
        try:
            found, data = read_object(repo, info.key)
        except ObjectNotFound:
            continue
        except BcpError as exc:
            yield None, info.key, exc, b""
            continue
        yield found, info.key, None, data


def _read_wal_file(path: Path) -> bytes:
    """The bytes of the regular file at ``path``: never through a symlink (what it points at is
    not what PostgreSQL handed over), never a FIFO or device (reading one could block forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UsageError(N_("{path}: no such WAL file"), path=path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(
                N_("{path} is not a regular file (a symlink): not a WAL file to archive"), path=path
            ) from None
        raise UsageError(N_("{path}: cannot read: {strerror}"), path=path, strerror=os_reason(exc)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(N_("{path} is not a regular file: not a WAL file to archive"), path=path)
        if info.st_size > MAX_WAL_FILE:
            raise UsageError(
                N_("{path} is {st_size} bytes, larger than any WAL segment can be"), path=path, st_size=info.st_size
            )
        data = handle.read(MAX_WAL_FILE + 1)
    if len(data) > MAX_WAL_FILE:
        raise UsageError(
            N_("{path} is over {MAX_WAL_FILE} bytes, larger than any WAL segment can be"),
            path=path,
            MAX_WAL_FILE=MAX_WAL_FILE,
        )
    return data


def push(repo: Repository, system: str, path: Path, *, now: datetime | None = None) -> PushResult:
    """Archive the file at ``path`` (PostgreSQL's ``%p``) for ``system``; return once it is durable."""
    name = check_name(path.name)
    data = _read_wal_file(path)
    if (local := as_capability(repo.backend, LocalBackend)) is not None:
        # PostgreSQL retries a killed push of this very segment: what the killed one left goes here
        local.remove_leftovers(_prefix(repo, system, name))
    digest = hashlib.sha256(data).hexdigest()
    for found, key, problem, _data in _stored_copies(repo, system, name):
        if found is None:
            if not isinstance(problem, CorruptObject):
                # unreadable now (an I/O error, storage unreachable) is not damaged: it may hold
                # other bytes, and a second version of one file would make recovery a coin toss
                raise WalConflict(
                    N_(
                        "{name} of {system} is archived as {key}, which cannot be read now ({problem}); nothing "
                        "was stored (PostgreSQL retries the push)"
                    ),
                    name=name,
                    system=system,
                    key=key,
                    problem=problem,
                )
            continue  # authenticated as damaged: storing an intact one beside it repairs the archive
        if found.sha256 == digest:
            return PushResult(system, name, len(data), 0, True, key, digest)
        raise WalConflict(
            N_(
                "{name} of {system} is already archived with other content ({key}); archived history is "
                "never overwritten: is another cluster archiving as this system?"
            ),
            name=name,
            system=system,
            key=key,
        )
    payload = _seal_payload(system, name, data, digest, now or datetime.now(UTC))
    prefix = _prefix(repo, system, name)
    object_name = repo.save_sealed(prefix, WAL_KIND, payload)
    key = prefix + object_name
    stored = repo.backend.stat(key).size
    return PushResult(system, name, len(data), stored, False, key, digest)


def fetch(repo: Repository, system: str, name: str) -> tuple[WalFile, bytes]:
    """Archived ``name`` and its bytes, from the first intact copy (each read once)."""
    check_name(name)
    problems = []
    for found, key, problem, data in _stored_copies(repo, system, name):
        if found is None:
            problems.append(f"{key}: {problem.message if problem else 'unreadable'}")
            continue
        return found, data
    if problems:
        raise CorruptObject(
            N_("{name} of {system}: every archived copy is damaged ({problems})"),
            name=name,
            system=system,
            problems=problems[0],
        )
    raise WalNotFound(N_("{name} of {system} is not in the archive"), name=name, system=system)


def get(repo: Repository, system: str, name: str, target: Path) -> WalFile:
    """Write archived ``name`` to ``target`` (PostgreSQL's ``%p``), under a temporary name first,
    so recovery never reads a partial file."""
    found, data = fetch(repo, system, name)
    write_new(target, data)
    return found


def write_new(target: Path, data: bytes) -> None:
    """Write ``target`` through a fresh temporary file of an unpredictable name, created
    exclusively: a name planted beside ``target`` (a symlink to another file) is never written
    through, and ``os.replace`` swaps in the file itself, whatever ``target`` was."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.bcpctl-", dir=target.parent)
    except OSError as exc:
        raise UsageError(N_("cannot write {target}: {strerror}"), target=target, strerror=os_reason(exc)) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(N_("cannot write {target}: {strerror}"), target=target, strerror=os_reason(exc)) from None


def archived_names(repo: Repository, system: str) -> dict[str, list[str]]:
    """Every archived file name of ``system`` and the objects holding it (from one listing)."""
    prefix = f"{WAL_PREFIX}{system_key(repo, system)}/"
    found: dict[str, list[str]] = {}
    for info in repo.backend.list(prefix):
        rest = info.key[len(prefix) :]
        name, _, _object = rest.partition("/")
        found.setdefault(name, []).append(info.key)
    return found


def system_dirs(repo: Repository) -> dict[str, dict[str, list[str]]]:
    """All WAL in the repository by system key: file name -> objects."""
    found: dict[str, dict[str, list[str]]] = {}
    for info in repo.backend.list(WAL_PREFIX):
        parts = info.key[len(WAL_PREFIX) :].split("/")
        if len(parts) != 3:
            continue
        found.setdefault(parts[0], {}).setdefault(parts[1], []).append(info.key)
    return found


def remove_file(repo: Repository, keys: list[str]) -> None:
    for key in keys:
        repo.backend.remove(key)
