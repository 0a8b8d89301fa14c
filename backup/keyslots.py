"""Adding and removing key slots on an unlocked repository."""

from __future__ import annotations

from backup.backend import ObjectNotFound
from backup.errors import RepositoryError
from backup.keys import KEYS_PREFIX, config_digest, list_slots, wrap
from backup.repository import Repository
from dc.errors import UsageError


def add_slot(repo: Repository, secret: bytes, *, kind: str, label: str = "") -> str:
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


def remove_slot(repo: Repository, slot_id: str) -> str:
    """Remove a slot by id or unique prefix; refuse the slot in use and the last passphrase slot."""
    slots = list_slots(repo.backend)
    matches = [s for s in slots if s.id.startswith(slot_id)]
    if len(matches) != 1:
        raise UsageError(f"no unique key slot matches '{slot_id}'")
    target = matches[0]
    if target.id == repo.slot_id:
        raise UsageError("refusing to remove the key slot this command was unlocked with; use another passphrase")
    if target.kind == "passphrase" and sum(s.kind == "passphrase" for s in slots) <= 1:
        raise UsageError("refusing to remove the last passphrase slot")
    try:
        repo.backend.stat(KEYS_PREFIX + target.id)
    except ObjectNotFound:
        raise RepositoryError(f"key slot {target.id} disappeared concurrently") from None
    repo.backend.remove(KEYS_PREFIX + target.id)
    repo.state_changed = True
    return target.id
