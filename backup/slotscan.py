"""Reading ``keys/``: every object on its own, the well-formed slots kept, every other one named.

One object must not lock the other key holders out (:mod:`backup.keys`, DESIGN "Security
rules"), so each is read on its own, never beyond :data:`~backup.slotformat.MAX_SLOT_BYTES`,
and one that is not a well-formed slot becomes a :class:`SlotProblem` for the caller to
report while the rest are still tried. At most :data:`MAX_SLOT_OBJECTS` objects are
examined, in :mod:`backup.slotorder`'s order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from backup.slotformat import KEYS_PREFIX, MAX_SLOT_BYTES, KeySlot, ParsedSlot, parse_slot
from backup.slotorder import NO_SIGNED_SLOTS, SignedSlots, shuffle
from dc.errors import N_, Message, os_reason
from storage.backend import Backend, ObjectInfo
from storage.errors import ObjectNotFound, StorageError

#: Objects under keys/ examined per scan; more is a flood, reported, not read.
MAX_SLOT_OBJECTS = 256


@dataclass(frozen=True)
class SlotProblem:
    """An object under ``keys/`` that is not a usable key slot, and why.

    ``name`` is the object's name below ``keys/``, made printable (control characters and
    undecodable bytes escaped) — what ``bcpctl key remove`` takes. Empty for a problem that
    concerns ``keys/`` as a whole (too many objects).
    """

    name: str
    problem: str


def printable(name: str) -> str:
    """An object name safe for one line of a terminal or a JSON document.

    Local names may carry undecodable bytes (as surrogates) and control characters.
    """
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw)


def scan(
    backend: Backend, signed: SignedSlots = NO_SIGNED_SLOTS, secret: bytes | None = None
) -> tuple[list[ParsedSlot], list[SlotProblem]]:
    """Every well-formed slot and every other object, examined in :mod:`backup.slotorder`'s order.

    Without a ``secret`` (listing, not unlocking) the others come oldest first.
    """
    order = shuffle(secret)
    listing: list[ObjectInfo] = sorted(
        backend.list(KEYS_PREFIX), key=lambda i: (signed.rank(i.key), order(i.key), i.mtime, i.key)
    )
    slots: list[ParsedSlot] = []
    problems: list[SlotProblem] = []
    for info in listing[:MAX_SLOT_OBJECTS]:
        name = info.key.removeprefix(KEYS_PREFIX)
        shown = printable(name)
        if info.size > MAX_SLOT_BYTES:
            problems.append(
                SlotProblem(shown, Message(N_("{size} bytes: far larger than a key slot, not read"), size=info.size))
            )
            continue
        try:
            raw = backend.load(info.key, 0, info.size)  # no more than was judged above
        except ObjectNotFound:
            problems.append(SlotProblem(shown, Message(N_("vanished while it was being read"))))
            continue
        except (StorageError, OSError) as exc:
            problems.append(SlotProblem(shown, Message(N_("cannot be read ({reason})"), reason=_reason(exc))))
            continue
        try:
            if len(raw) > MAX_SLOT_BYTES:
                raise ValueError(Message(N_("{size} bytes: far larger than a key slot"), size=len(raw)))
            slots.append(parse_slot(raw, name))
        except ValueError as exc:
            problems.append(SlotProblem(shown, exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)))
    if len(listing) > MAX_SLOT_OBJECTS:
        problems.append(
            SlotProblem(
                "",
                Message(
                    N_(
                        "keys/ holds {count} objects; only {limit} were examined (remove planted or "
                        "stray objects with 'bcpctl key remove')"
                    ),
                    count=len(listing),
                    limit=MAX_SLOT_OBJECTS,
                ),
            )
        )
    return slots, problems


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return os_reason(exc)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def scan_slots(backend: Backend) -> tuple[list[KeySlot], list[SlotProblem]]:
    """The usable key slots (oldest first) and what is wrong with every other object in ``keys/``.

    For ``check`` and ``key list``: needs no key, reads each object once, never raises for
    one bad object.
    """
    slots, problems, _named = scan_signed_slots(backend, NO_SIGNED_SLOTS)
    return slots, problems


def scan_signed_slots(backend: Backend, signed: SignedSlots) -> tuple[list[KeySlot], list[SlotProblem], set[str]]:
    """:func:`scan_slots` with the signed ones first, and the ids of the slots ``signed`` names (same bytes)."""
    slots, problems = scan(backend, signed)
    named = {s.info.id for s in slots if signed.names(KEYS_PREFIX + s.info.id, s.digest)}
    return [s.info for s in slots], problems, named


def slot_digests(backend: Backend) -> dict[str, str]:
    """``keys/<id>`` → SHA-256 of every well-formed slot (what a manifest signs)."""
    return {KEYS_PREFIX + slot.info.id: slot.digest for slot in scan(backend)[0]}


def list_slots(backend: Backend) -> list[KeySlot]:
    return scan_slots(backend)[0]


def skipped_note(problems: Iterable[SlotProblem]) -> str:
    """The tail of a refusal when objects were passed over: tampering looks like a wrong key."""
    problems = list(problems)
    damaged = sum(1 for p in problems if p.name)
    parts = [p.problem for p in problems if not p.name]
    if damaged:
        parts.insert(
            0,
            Message(
                N_(
                    "{count} unreadable object(s) in keys/ were skipped; "
                    "a damaged slot cannot be told from a wrong passphrase"
                ),
                count=damaged,
            ),
        )
    if not parts:
        return ""
    return Message(N_(" ({parts}; see 'bcpctl key list')"), parts=functools.reduce(_then, parts))


def _then(first: str, then: str) -> Message:
    return Message(N_("{first}; {then}"), first=first, then=then)
