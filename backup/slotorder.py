"""Which key slots an unlock tries, in which order, and how many: the part no attacker may decide.

Each try is an Argon2id derivation (~0.2 s at the default cost, seconds at the costliest a slot
may ask for), so an unlock cannot try an unbounded number of slots. Whoever can write ``keys/``
chooses how many well-formed bogus slots there are, their names, their modification times and
their KDF cost, and may replace the manifest too. If the order of tries came from any of that,
33 planted slots dated 1970 would lock every passphrase out. So slots are tried in three tiers:

1. **trusted** — named by a manifest that verified with a pinned public key (configured for the
   site, or remembered from an earlier unlock on this machine, :mod:`backup.slottrust`), or
   slots that opened on this machine before. Nobody without the master key chose them: every
   one is tried.
2. **hinted** — named by a manifest that verifies only with the key it names itself (a fresh
   machine without a pin): at most :data:`MAX_UNWRAP_TRIES`.
3. **the rest** — at most :data:`MAX_UNWRAP_TRIES` when a verified manifest exists (then every
   genuine slot is in tier 1 and the rest is almost surely planted). Without one (a fresh
   machine, a forged or deleted manifest) nothing tells the genuine slot apart, so tries are
   bounded by KDF work instead (:data:`UNVERIFIED_WORK`) and taken cheapest first: a genuine
   slot at the default cost is reached after at most :data:`~backup.slotscan.MAX_SLOT_OBJECTS`
   slots no costlier than itself, and costlier planted slots come after it.

Within tiers 2 and 3, slots of equal cost are ordered by an HMAC of their name keyed with the
secret being tried, which the attacker does not know: neither names nor modification times
move a planted slot ahead of a genuine one. Objects are examined (read) in the same order.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

#: Argon2id derivations per tier that no verified manifest vouches for
MAX_UNWRAP_TRIES = 32
#: KiB × passes of the default cost (64 MiB, 3 passes)
DEFAULT_WORK = 65536 * 3
#: KDF work (KiB × passes) the last tier may spend when no verified manifest exists: 256 slots
#: at the default cost, ~50 s here; a wrong passphrase on an attacked repository costs that much.
UNVERIFIED_WORK = 256 * DEFAULT_WORK

T = TypeVar("T")


@dataclass(frozen=True)
class SignedSlots:
    """Key slots to try before the others: ``keys/<id>`` → the SHA-256 of their bytes (see the module)."""

    trusted: Mapping[str, str] = field(default_factory=dict)
    hinted: Mapping[str, str] = field(default_factory=dict)
    #: a manifest verified with a pinned key supplied ``trusted``
    verified: bool = False

    def rank(self, key: str, digest: str | None = None) -> int:
        """0 trusted, 1 hinted, 2 neither; ``digest`` ``None`` ranks by name alone (before reading)."""
        for rank, named in enumerate((self.trusted, self.hinted)):
            if key in named and (digest is None or named[key] == digest):
                return rank
        return 2

    def names(self, key: str, digest: str) -> bool:
        return self.rank(key, digest) < 2


NO_SIGNED_SLOTS = SignedSlots()


def shuffle(secret: bytes | None) -> Callable[[str], bytes]:
    """A per-secret order of object names nobody without the secret can predict (names as given without one)."""
    if secret is None:
        return lambda name: b""
    key = hashlib.sha256(b"bcpctl/v1/key-slot-order\n" + secret).digest()
    return lambda name: hmac.new(key, name.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


@dataclass(frozen=True)
class Tier(Generic[T]):
    slots: list[T]
    #: how many to try at most; ``None``: as many as ``work`` allows
    tries: int | None
    #: KDF work (KiB × passes) to spend at most, ``None`` for no limit
    work: int | None = None

    def bounded(self, cost: Callable[[T], int]) -> tuple[list[T], int]:
        """The slots to try and how many are left untried."""
        chosen = self.slots[: self.tries] if self.tries is not None else self.slots
        if self.work is not None:
            spent, kept = 0, []
            for slot in chosen:
                if spent + cost(slot) > self.work:
                    break
                spent += cost(slot)
                kept.append(slot)
            chosen = kept
        return chosen, len(self.slots) - len(chosen)


def tiers(
    slots: list[T],
    identify: Callable[[T], tuple[str, str]],
    cost: Callable[[T], int],
    signed: SignedSlots,
    secret: bytes,
) -> list[Tier[T]]:
    """``slots`` in the three tiers of the module docstring; ``identify`` gives a slot's key and digest."""
    order = shuffle(secret)
    groups: list[list[T]] = [[], [], []]
    for slot in slots:
        groups[signed.rank(*identify(slot))].append(slot)
    for group in groups[1:]:
        group.sort(key=lambda slot: (cost(slot), order(identify(slot)[0])))
    rest = Tier(groups[2], MAX_UNWRAP_TRIES) if signed.verified else Tier(groups[2], None, UNVERIFIED_WORK)
    return [Tier(groups[0], None), Tier(groups[1], MAX_UNWRAP_TRIES), rest]
