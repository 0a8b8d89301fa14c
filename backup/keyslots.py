"""Adding and removing key slots on an unlocked repository."""

from __future__ import annotations

from dataclasses import dataclass

from backup.errors import RepositoryError
from backup.keys import config_digest, wrap
from backup.repository import Repository
from backup.slotformat import KEYS_PREFIX, KeySlot
from backup.slotorder import SignedSlots
from backup.slotscan import SlotProblem, printable, scan_signed_slots, scan_slots
from dc.errors import N_, UsageError
from storage.errors import ObjectNotFound

#: a label says who or what a slot is for; it must keep a slot far below slotformat.MAX_SLOT_BYTES
MAX_LABEL_CHARS = 200


@dataclass(frozen=True)
class SlotRow:
    """One object under ``keys/`` as ``key list`` shows it: a usable slot or a damaged object."""

    id: str
    status: str  # "ok" or "damaged"
    kind: str
    label: str
    host: str
    created: str
    current: bool
    problem: str | None = None
    #: the signed repository manifest names this slot with these bytes; an unsigned slot nobody
    #: here added is planted or from before the manifest ('key remove --unsigned' clears them)
    signed: bool = False


def add_slot(repo: Repository, secret: bytes, *, kind: str, label: str = "") -> str:
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise UsageError(
            N_("a key slot label must be printable and at most {MAX_LABEL_CHARS} characters"),
            MAX_LABEL_CHARS=MAX_LABEL_CHARS,
        )
    slot_id, slot = wrap(
        repo.master,
        secret,
        repo_id=repo.config.id,
        config_digest=config_digest(repo.config_raw),
        kind=kind,
        label=label,
    )
    repo.backend.save(KEYS_PREFIX + slot_id, slot)
    repo.added_slots.add(slot_id)
    repo.state_changed = True
    return slot_id


def add_passphrase_slot(repo: Repository, passphrase: str, *, label: str = "") -> str:
    if len(passphrase) < 8:
        raise UsageError(N_("the new passphrase is shorter than 8 characters"))
    return add_slot(repo, passphrase.encode(), kind="passphrase", label=label)


def slot_rows(repo: Repository) -> list[SlotRow]:
    """Every object under ``keys/``: usable slots first (signed ones first, then oldest first), then damaged objects."""
    slots, problems, signed = scan_signed_slots(repo.backend, _signed(repo))
    rows = [
        SlotRow(s.id, "ok", s.kind, s.label, s.host, s.created, s.id == repo.slot_id, signed=s.id in signed)
        for s in slots
    ]
    rows += [SlotRow(p.name, "damaged", "", "", "", "", False, p.problem) for p in problems if p.name]
    return rows


def _signed(repo: Repository) -> SignedSlots:
    """The slots the stored manifest signs, verified with this repository's own key."""
    from backup.manifest import repository_public_key, signed_slots

    return signed_slots(repo.backend, repo.config.id, repository_public_key(repo))


def remove_unsigned(repo: Repository) -> list[str]:
    """Remove every usable slot the verified manifest does not sign, except the one in use and this session's.

    The recovery from slots planted under ``keys/``: they open nothing, but each costs an
    Argon2id derivation per unlock. Refused without a verified manifest (nothing would tell
    the planted slots from the genuine ones) or when it would leave no passphrase slot.
    """
    signed = _signed(repo)
    if not signed.trusted:
        raise UsageError(
            N_(
                "the repository has no manifest signed by its own key: nothing tells planted slots from "
                "genuine ones (remove them one by one with 'key remove ID')"
            )
        )
    slots, _problems, named = scan_signed_slots(repo.backend, signed)
    keep = named | {repo.slot_id} | repo.added_slots
    doomed = [s for s in slots if s.id not in keep]
    if not any(s.kind == "passphrase" for s in slots if s.id in keep):
        raise UsageError(N_("refusing to remove every passphrase slot"))
    for slot in doomed:
        repo.backend.remove(KEYS_PREFIX + slot.id)
    if doomed:
        repo.state_changed = True
    return [s.id for s in doomed]


def _match(name: str, slots: list[KeySlot], problems: list[SlotProblem]) -> KeySlot | SlotProblem:
    if not name:
        raise UsageError(N_("name the key slot to remove (its id, a unique prefix, or a damaged object's name)"))
    entries: list[tuple[str, KeySlot | SlotProblem]] = [(s.id, s) for s in slots]
    entries += [(p.name, p) for p in problems if p.name]
    exact = [entry for shown, entry in entries if shown == name]
    matches = exact or [entry for shown, entry in entries if shown.startswith(name)]
    if len(matches) != 1:
        raise UsageError(
            N_("no unique key slot matches '{printable}' (see 'bcpctl key list')"), printable=printable(name)
        )
    return matches[0]


def remove_slot(repo: Repository, name: str) -> str:
    """Remove a slot (by id or unique prefix) or a damaged object under ``keys/`` (by its name).

    Refuses the slot this command was unlocked with and the last usable passphrase slot; a
    damaged object opens nothing, so removing it never locks anyone out.
    """
    slots, problems = scan_slots(repo.backend)
    target = _match(name, slots, problems)
    if isinstance(target, KeySlot):
        if target.id == repo.slot_id:
            raise UsageError(
                N_("refusing to remove the key slot this command was unlocked with; use another passphrase")
            )
        if target.kind == "passphrase" and sum(s.kind == "passphrase" for s in slots) <= 1:
            raise UsageError(N_("refusing to remove the last passphrase slot"))
        keys = [KEYS_PREFIX + target.id]
        shown = target.id
    else:
        # Listed names are printable forms; the object's real name may hold raw bytes.
        keys = [
            i.key for i in repo.backend.list(KEYS_PREFIX) if printable(i.key.removeprefix(KEYS_PREFIX)) == target.name
        ]
        shown = target.name
    if not keys:
        raise RepositoryError(N_("key slot object {shown} disappeared concurrently"), shown=shown)
    for key in keys:
        try:
            repo.backend.stat(key)
        except ObjectNotFound:
            raise RepositoryError(N_("key slot object {shown} disappeared concurrently"), shown=shown) from None
        repo.backend.remove(key)
    repo.state_changed = True
    return shown
