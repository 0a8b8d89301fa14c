"""Adding and removing key slots on an unlocked repository."""

from __future__ import annotations

from dataclasses import dataclass

from backup.errors import RepositoryError
from backup.keys import KEYS_PREFIX, KeySlot, SlotProblem, config_digest, printable, scan_slots, wrap
from backup.repository import Repository
from dc.errors import UsageError
from storage.errors import ObjectNotFound

#: a label says who or what a slot is for; it must keep a slot far below keys.MAX_SLOT_BYTES
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


def add_slot(repo: Repository, secret: bytes, *, kind: str, label: str = "") -> str:
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise UsageError(f"a key slot label must be printable and at most {MAX_LABEL_CHARS} characters")
    slot_id, slot = wrap(
        repo.master,
        secret,
        repo_id=repo.config.id,
        config_digest=config_digest(repo.config_raw),
        kind=kind,
        label=label,
    )
    repo.backend.save(KEYS_PREFIX + slot_id, slot)
    repo.state_changed = True
    return slot_id


def add_passphrase_slot(repo: Repository, passphrase: str, *, label: str = "") -> str:
    if len(passphrase) < 8:
        raise UsageError("the new passphrase is shorter than 8 characters")
    return add_slot(repo, passphrase.encode(), kind="passphrase", label=label)


def slot_rows(repo: Repository) -> list[SlotRow]:
    """Every object under ``keys/``: usable slots first (oldest first), then damaged objects."""
    slots, problems = scan_slots(repo.backend)
    rows = [SlotRow(s.id, "ok", s.kind, s.label, s.host, s.created, s.id == repo.slot_id) for s in slots]
    rows += [SlotRow(p.name, "damaged", "", "", "", "", False, p.problem) for p in problems if p.name]
    return rows


def _match(name: str, slots: list[KeySlot], problems: list[SlotProblem]) -> KeySlot | SlotProblem:
    if not name:
        raise UsageError("name the key slot to remove (its id, a unique prefix, or a damaged object's name)")
    entries: list[tuple[str, KeySlot | SlotProblem]] = [(s.id, s) for s in slots]
    entries += [(p.name, p) for p in problems if p.name]
    exact = [entry for shown, entry in entries if shown == name]
    matches = exact or [entry for shown, entry in entries if shown.startswith(name)]
    if len(matches) != 1:
        raise UsageError(f"no unique key slot matches '{printable(name)}' (see 'bcpctl key list')")
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
            raise UsageError("refusing to remove the key slot this command was unlocked with; use another passphrase")
        if target.kind == "passphrase" and sum(s.kind == "passphrase" for s in slots) <= 1:
            raise UsageError("refusing to remove the last passphrase slot")
        keys = [KEYS_PREFIX + target.id]
        shown = target.id
    else:
        # Listed names are printable forms; the object's real name may hold raw bytes.
        keys = [
            i.key for i in repo.backend.list(KEYS_PREFIX) if printable(i.key.removeprefix(KEYS_PREFIX)) == target.name
        ]
        shown = target.name
    if not keys:
        raise RepositoryError(f"key slot object {shown} disappeared concurrently")
    for key in keys:
        try:
            repo.backend.stat(key)
        except ObjectNotFound:
            raise RepositoryError(f"key slot object {shown} disappeared concurrently") from None
        repo.backend.remove(key)
    repo.state_changed = True
    return shown
