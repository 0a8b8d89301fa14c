"""A share typed by a person: what does not change a word is forgiven, a real mistake is named by its position."""

from __future__ import annotations

import random

import pytest
import shamir_mnemonic
from hypothesis import given, settings
from hypothesis import strategies as st
from shamir_mnemonic.wordlist import WORDLIST

from backup.escrowwords import ShareMistyped, check_code, read_typed_share

#: a few fixed 2-of-3 splits of 256-bit secrets (33 words), seeded so failures reproduce
SHARES = [
    share
    for seed in range(3)
    for share in shamir_mnemonic.generate_mnemonics(1, [(2, 3)], random.Random(seed).randbytes(32))[0]
]


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def typed(draw: st.DrawFn) -> tuple[str, str]:
    """A share and one way a custodian might type it."""
    share = draw(st.sampled_from(SHARES))
    out = []
    for number, word in enumerate(share.split(), start=1):
        word = draw(st.sampled_from([word, word.upper(), word.capitalize(), word[:4] + word[4:].upper()]))
        if draw(st.booleans()):
            word = _full_width(word)
        if draw(st.booleans()):
            word = draw(st.sampled_from([f"{number}. ", f"{number}) ", f"({number}) ", f"{number}:"])) + word
        out.append(word + draw(st.sampled_from([" ", "  ", "\u3000", "\n", "\t", ", ", "、", " \n\n"])))
    if draw(st.booleans()):
        out.append(f"\n確認コード：{_full_width(check_code(share))}\n")
    return share, draw(st.sampled_from(["", "  ", "\n"])) + "".join(out)


@settings(max_examples=80, derandomize=True, deadline=None)
@given(typed())
def test_spacing_width_case_and_numbering_are_forgiven(case: tuple[str, str]) -> None:
    share, text = case
    assert read_typed_share(text, "share", expected_length=33) == share


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.sampled_from(SHARES), st.integers(0, 32), st.integers(0, 1023))
def test_one_wrong_word_is_named_by_its_position(share: str, position: int, replacement: int) -> None:
    words = share.split()
    if WORDLIST[replacement][:4] == words[position][:4]:
        replacement = (replacement + 1) % 1024
    words[position] = WORDLIST[replacement]
    with pytest.raises(ShareMistyped) as err:
        read_typed_share(" ".join(words), "share 1", expected_length=33)
    assert str(err.value) == f"share 1: word {position + 1} is wrong (the other words pass the share's checksum)"
    assert WORDLIST[replacement] not in str(err.value).split()  # a typed word is part of a secret: never echoed


@settings(max_examples=20, derandomize=True, deadline=None)
@given(st.sampled_from(SHARES), st.integers(0, 32))
def test_a_missing_or_an_extra_word_is_located(share: str, position: int) -> None:
    words = share.split()
    first = position  # a word left out beside its twin is named at the first of the two
    while first > 0 and words[first - 1] == words[position]:
        first -= 1
    with pytest.raises(ShareMistyped, match=f"a word is missing (before word {first + 1}|at the end)"):
        read_typed_share(" ".join(words[:position] + words[position + 1 :]), "s", expected_length=33)
    neighbours = set(words[max(position - 1, 0) : position + 1])
    inserted = next(w for w in ("academic", "acid", "acne") if w not in neighbours)
    extra = [*words[:position], inserted, *words[position:]]
    with pytest.raises(ShareMistyped, match=f"word {position + 1} is one too many"):
        read_typed_share(" ".join(extra), "s", expected_length=33)


def test_a_word_not_in_the_list_and_a_wrong_check_code() -> None:
    words = SHARES[0].split()
    words[9] = "ｘｙｚｚｙ"
    with pytest.raises(ShareMistyped, match=r"^s: word 10 is not a SLIP-39 word"):
        read_typed_share(" ".join(words), "s")
    with pytest.raises(ShareMistyped, match="do not match the check code"):
        read_typed_share(SHARES[0] + "\ncheck: 0000-0000", "s")
    # the first four letters name a word (SLIP-39's word list is built that way)
    assert read_typed_share(" ".join(w[:4] for w in SHARES[1].split()), "s") == SHARES[1]
    with pytest.raises(ShareMistyped, match="holds no words"):
        read_typed_share("# only a comment\n\n", "s")
