"""The order of key slot tries (backup/slotorder.py), as a pure function: no attacker choice decides it.

Invariants over any set of planted slots (names, how many, KDF cost — everything storage lets an
attacker choose): a slot vouched for is always tried; without any vouching, a genuine slot at
the default cost is always tried among up to MAX_SLOT_OBJECTS examined ones; and the work spent
stays bounded.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.slotorder import DEFAULT_WORK, MAX_UNWRAP_TRIES, UNVERIFIED_WORK, SignedSlots, tiers
from backup.slotscan import MAX_SLOT_OBJECTS

GENUINE = ("keys/genuine0000000", "d" * 64, DEFAULT_WORK)
#: the KDF work a slot may ask for: 8 MiB × 1 pass up to 1 GiB × 4 passes
COSTS = st.integers(min_value=8192, max_value=4 * 1024 * 1024)
PLANTED = st.lists(
    st.tuples(st.text("0123456789abcdef", min_size=16, max_size=16).map("keys/".__add__), COSTS),
    max_size=MAX_SLOT_OBJECTS - 1,
    unique_by=lambda t: t[0],
)


def _chosen(slots: list[tuple[str, str, int]], signed: SignedSlots, secret: bytes) -> tuple[list[str], int]:
    chosen: list[str] = []
    work = 0
    for tier in tiers(slots, lambda s: (s[0], s[1]), lambda s: s[2], signed, secret):
        tried, _untried = tier.bounded(lambda s: s[2])
        chosen += [s[0] for s in tried]
        work += sum(s[2] for s in tried)
    return chosen, work


@settings(max_examples=150, derandomize=True, deadline=None)
@given(planted=PLANTED, secret=st.binary(min_size=1, max_size=16), forged=st.booleans())
def test_without_any_vouching_the_genuine_slot_is_tried_and_the_work_is_bounded(
    planted: list[tuple[str, int]], secret: bytes, forged: bool
) -> None:
    slots = [(name, "a" * 64, cost) for name, cost in planted] + [GENUINE]
    # a forged manifest (on a fresh machine it only hints) names every planted slot
    signed = SignedSlots(hinted={name: "a" * 64 for name, _ in planted}) if forged else SignedSlots()
    chosen, work = _chosen(slots, signed, secret)
    assert GENUINE[0] in chosen
    assert work <= UNVERIFIED_WORK + MAX_UNWRAP_TRIES * 4 * 1024 * 1024


@settings(max_examples=100, derandomize=True, deadline=None)
@given(planted=PLANTED, secret=st.binary(min_size=1, max_size=16))
def test_a_vouched_slot_is_always_tried_and_the_rest_costs_at_most_the_budget(
    planted: list[tuple[str, int]], secret: bytes
) -> None:
    slots = [(name, "a" * 64, cost) for name, cost in planted] + [GENUINE]
    signed = SignedSlots(trusted={GENUINE[0]: GENUINE[1]}, verified=True)
    chosen, _work = _chosen(slots, signed, secret)
    assert chosen[0] == GENUINE[0] and len(chosen) <= 1 + MAX_UNWRAP_TRIES


def test_a_vouched_name_with_other_bytes_is_not_vouched_for() -> None:
    signed = SignedSlots(trusted={GENUINE[0]: "e" * 64}, verified=True)
    assert signed.rank(GENUINE[0], GENUINE[1]) == 2 and signed.rank(GENUINE[0]) == 0
