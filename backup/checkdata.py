"""Reading every byte (``check --read-data``): packs against their names, blobs against their ids.

A pack's blobs are decrypted one by one at the places the index records, so a damaged blob
marks only the files that use it (:class:`~backup.damage.Damage`) and a truncated pack's first
blobs still count. Packs no index names are read too and said to be what they are: a copy,
damage, or the only home of blobs snapshots miss (then ``repair index`` is the way back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from backup import compress
from backup.checkreport import REPAIR_INDEX, REPAIR_INDEX_ALL, CheckReport, Problem
from backup.checkstructure import retired
from backup.damage import Damage
from backup.errors import CorruptObject
from backup.layout import PACK_KINDS, identify
from backup.objectsize import OversizedObject
from backup.pack import BlobEntry, decrypt_blob, pack_key, parse_pack
from backup.repository import Repository
from dc.errors import N_, BcpError, Message, message_of
from storage.backend import ObjectInfo
from storage.errors import ObjectNotFound


def read_pack(
    repo: Repository, name: str, blob_type: int, index_names: list[str], damage: Damage, report: CheckReport
) -> None:
    """Verify a pack's name, header and every blob the index places in it, blob by blob."""
    key = pack_key(name, blob_type)
    try:
        data = repo.load_pack(key)
    except BcpError as exc:
        damage.packs.add(name)
        if not (isinstance(exc, ObjectNotFound) and retired(repo, index_names)):
            report.problems.append(Problem(key, message_of(exc)))
        return
    report.packs_read += 1
    report.bytes_read += len(data)
    if hashlib.sha256(data).hexdigest() != name:
        report.problems.append(Problem(key, Message(N_("pack content does not match its name (bit rot or tampering)"))))
        report.suggest(REPAIR_INDEX_ALL)
    info = repo.cache.pack_info(name)
    rows = repo.cache.pack_entries(name)
    try:
        _salt, header = parse_pack(repo.master, repo.repo_id, data, key)
    except CorruptObject as exc:
        reason = exc.message.removeprefix(key).lstrip(": ")
        report.problems.append(
            Problem(key, Message(N_("{reason}; its blobs are read at the places the index records"), reason=reason))
        )
        header = None
    bad = []
    for chunk_id, t, flags, offset, length, raw_length in rows:
        entry = BlobEntry(chunk_id, t, flags, offset, length, raw_length)
        problem = _blob_problem(repo, data, entry, info.salt if info else data[8:40], key)
        if problem:
            bad.append(problem)
            damage.blobs.add((name, chunk_id))
        else:
            report.blobs_read += 1
    if bad:
        more = f" (and {len(bad) - 1} more damaged blob(s))" if len(bad) > 1 else ""
        report.problems.append(Problem(key, bad[0] + more))
    if bad or header is None:
        report.suggest(REPAIR_INDEX_ALL)
    if header is not None:
        placed = {(e.id, e.offset, e.length) for e in header}
        missing = [r for r in rows if (r[0], r[3], r[4]) not in placed]
        if missing:
            report.problems.append(
                Problem(
                    key,
                    Message(
                        N_("{count} blob(s) the index places in this pack are not in its header"), count=len(missing)
                    ),
                )
            )


def _blob_problem(repo: Repository, data: bytes, entry: BlobEntry, salt: bytes, key: str) -> str | None:
    if entry.offset + entry.length > len(data):
        return f"blob {entry.id.hex()[:16]} lies beyond the end of the pack"
    try:
        sealed = memoryview(data)[entry.offset : entry.offset + entry.length]
        payload = decrypt_blob(repo.cipher_for(salt), repo.repo_id, entry, sealed, key)
        what = Message(N_("blob {blob} in {key}"), blob=entry.id.hex()[:16], key=key)
        plain = compress.decode(payload, entry.flags, entry.raw_length, what)
    except CorruptObject as exc:
        return exc.message
    if repo.master.chunk_id_of(plain) != entry.id:
        return f"blob {entry.id.hex()[:16]} does not match its id"
    return None


def read_unindexed(
    repo: Repository, key: str, listing: Mapping[str, ObjectInfo], wanted: set[bytes], report: CheckReport
) -> None:
    """Say what a pack no index names is: which blobs snapshots miss it holds, a copy, or damage.

    The note replaces the structural "in no index" note of the same pack.
    """
    report.notes[:] = [note for note in report.notes if note.object != key]
    try:
        data = repo.load_any(key)
    except OversizedObject as exc:  # never anything bcpctl wrote: a planted object is worth a red check
        report.problems.append(Problem(key, Message(N_("in no index: {reason}; remove it"), reason=message_of(exc))))
        return
    except BcpError as exc:
        report.notes.append(Problem(key, Message(N_("in no index, and unreadable: {reason}"), reason=message_of(exc))))
        return
    report.packs_read += 1
    report.bytes_read += len(data)
    found = identify(repo, key, data, listing)
    if found.copy_of:
        report.notes.append(
            Problem(key, Message(N_("in no index: a copy of {copy_of} (prune removes it)"), copy_of=found.copy_of))
        )
    elif found.kind not in PACK_KINDS:
        report.notes.append(
            Problem(key, Message(N_("in no index, and not a readable pack (a stray or a damaged leftover)")))
        )
    else:
        _salt, entries = parse_pack(repo.master, repo.repo_id, data, key)
        needed = sum(1 for e in entries if e.id in wanted)
        state = "" if found.named_by_content else Message(N_(", but its content does not match its name"))
        if needed:
            report.notes.append(
                Problem(
                    key,
                    Message(
                        N_("in no index{state}: holds {needed} blob(s) snapshots miss; run '{command}'"),
                        state=state,
                        needed=needed,
                        command=REPAIR_INDEX,
                    ),
                )
            )
        else:
            report.notes.append(
                Problem(
                    key,
                    Message(
                        N_("in no index{state}: none of its {count} blob(s) is missed"), state=state, count=len(entries)
                    ),
                )
            )
