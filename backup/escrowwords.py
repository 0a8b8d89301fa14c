"""Reading an escrow share as a custodian types it, and saying which word is wrong.

A custodian re-types 33 words from a paper sheet on a strange machine on a bad day: with the
sheet's numbers, in full-width characters from a Japanese IME (``ａｃａｄｅｍｉｃ``, ideographic
spaces), in capitals, one word per line or all on one. None of that changes a word, so all of
it is accepted. SLIP-39 words are unique by their first four letters (the standard's word
list is built that way), so a word whose first four letters name exactly one word is that word.

What is left is a real mistake, and the custodian needs its position, not "invalid
mnemonic": a word not in the list is named by its number; a share that fails its RS1024
checksum is searched for the one word whose replacement makes it pass (RS1024 corrects no
error itself, but a single wrong word is the only explanation when exactly one position
has a fix), and for a missing or an extra word. The typed words are secrets: messages give
positions only, never a word.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from dc.errors import N_, UsageError

#: Separators people type between words (after NFKC, which maps ideographic spaces and full-width commas).
_SEPARATORS = re.compile(r"[\s,、。・;|/]+")
#: The sheet's numbering copied along: "1.", "12)", "(3)", "4:".
_NUMBERING = re.compile(r"^\(?\d+[.):]?\)?")
#: A check code line: ``check: abcd-ef01`` or ``確認コード: abcd-ef01``.
_CHECK = re.compile(r"^\s*(?:#\s*)?(?:check|確認コード)\s*[:：]\s*([0-9a-f]{4})-?([0-9a-f]{4})\s*$")
PREFIX_LETTERS = 4
#: SLIP-39's RS1024 checksum: the last three words.
CHECKSUM_WORDS = 3


class ShareMistyped(UsageError):
    """A share as typed is not a share; the message names the position of the mistake."""


def check_code(mnemonic: str) -> str:
    """The sheet's check code: 8 hex digits of SHA-256 over the words, so a custodian can confirm a copy."""
    digest = hashlib.sha256(" ".join(mnemonic.split()).encode("ascii")).hexdigest()
    return f"{digest[:4]}-{digest[4:8]}"


def _wordlist() -> tuple[list[str], dict[str, int]]:
    from shamir_mnemonic import wordlist

    return wordlist.WORDLIST, wordlist.WORD_INDEX_MAP


def _prefixes() -> dict[str, int]:
    words, _ = _wordlist()
    return {w[:PREFIX_LETTERS]: i for i, w in enumerate(words)}


def split_typed(text: str) -> tuple[list[str], str | None]:
    """Tokens as typed (NFKC, lower case, numbering dropped) and the check code if one was typed."""
    tokens: list[str] = []
    check = None
    for line in unicodedata.normalize("NFKC", text).lower().splitlines():
        found = _CHECK.match(line)
        if found:
            check = f"{found.group(1)}-{found.group(2)}"
            continue
        if line.lstrip().startswith("#"):
            continue
        for token in _SEPARATORS.split(line):
            token = _NUMBERING.sub("", token).strip("().:[]「」")
            if token and not token.isdigit():
                tokens.append(token)
    return tokens, check


def _customizations() -> tuple[bytes, bytes]:
    from shamir_mnemonic.constants import CUSTOMIZATION_STRING_EXTENDABLE, CUSTOMIZATION_STRING_ORIG

    return CUSTOMIZATION_STRING_ORIG, CUSTOMIZATION_STRING_EXTENDABLE


def _checks(indices: Sequence[int]) -> bool:
    from shamir_mnemonic import rs1024

    return any(rs1024.verify_checksum(indices, custom) for custom in _customizations())


def _checksum(payload: Sequence[int], custom: bytes) -> int:
    from shamir_mnemonic import rs1024

    value = 0
    for word in rs1024.create_checksum(payload, custom):
        value = value << 10 | word
    return value


def _fitting(seq: list[int], pos: int) -> set[int]:
    """The words at ``pos`` (other than ``seq[pos]``, which is -1 for a missing word) that make ``seq`` pass.

    The checksum of the payload (all words but the last three) is affine over GF(2) in any one
    word, so ten probes of the library's own ``create_checksum`` per position replace 1024 full
    checks: the word fits where the probes' combination equals the typed checksum.
    """
    tail = len(seq) - CHECKSUM_WORDS
    found: set[int] = set()
    typed = 0
    for word in seq[tail:]:
        typed = typed << 10 | word & 1023  # a missing word's placeholder (-1) is masked out below
    for custom in _customizations():
        if pos >= tail:  # a checksum word: the payload fixes it
            payload_sum = _checksum(seq[:tail], custom)
            shift = 10 * (len(seq) - 1 - pos)
            wanted = payload_sum >> shift & 1023
            if wanted != seq[pos] and (payload_sum ^ typed) & ~(1023 << shift) == 0:
                found.add(wanted)
            continue
        zero = _checksum([*seq[:pos], 0, *seq[pos + 1 : tail]], custom)
        columns = [_checksum([*seq[:pos], 1 << bit, *seq[pos + 1 : tail]], custom) ^ zero for bit in range(10)]
        for word in range(1024):
            if word == seq[pos]:
                continue
            value = zero
            for bit in range(10):
                if word >> bit & 1:
                    value ^= columns[bit]
            if value == typed:
                found.add(word)
    return found


def _locate(indices: list[int], expected_length: int | None) -> str:
    """Where a share that fails its checksum is wrong, as far as one mistake explains it.

    Fixes are compared by the share they produce, so a word typed twice in a row (two removals
    give the same share) or left out beside its twin still names one position.
    """
    if expected_length is None or len(indices) == expected_length:
        wrong = [pos for pos in range(len(indices)) if _fitting(indices, pos)]
        if len(wrong) == 1:
            return f"word {wrong[0] + 1} is wrong (the other words pass the share's checksum)"
    if expected_length is None or len(indices) == expected_length + 1:
        extra: dict[tuple[int, ...], int] = {}
        for pos in range(len(indices)):
            shorter = (*indices[:pos], *indices[pos + 1 :])
            if _checks(shorter):
                extra.setdefault(shorter, pos)
        if len(extra) == 1:
            return f"word {next(iter(extra.values())) + 1} is one too many (the share passes its checksum without it)"
    if expected_length is None or len(indices) == expected_length - 1:
        missing: dict[tuple[int, ...], int] = {}
        for pos in range(len(indices) + 1):
            for word in _fitting([*indices[:pos], -1, *indices[pos:]], pos):
                missing.setdefault((*indices[:pos], word, *indices[pos:]), pos)
        if len(missing) == 1:
            pos = next(iter(missing.values()))
            return f"a word is missing before word {pos + 1}" if pos < len(indices) else "a word is missing at the end"
    return "more than one word is wrong: compare every word with the sheet"


def read_typed_share(text: str, where: str, expected_length: int | None = None) -> str:
    """The canonical mnemonic (list words, single spaces) from a share as typed, or a refusal naming the position."""
    tokens, check = split_typed(text)
    if not tokens:
        raise ShareMistyped(N_("{where} holds no words"), where=where)
    words, index = _wordlist()
    prefixes = _prefixes()
    indices = []
    for number, token in enumerate(tokens, start=1):
        found = index.get(token)
        if found is None and len(token) >= PREFIX_LETTERS and token.isascii():
            found = prefixes.get(token[:PREFIX_LETTERS])
        if found is None:
            raise ShareMistyped(
                N_("{where}: word {number} is not a SLIP-39 word (check its spelling against the sheet)"),
                where=where,
                number=number,
            )
        indices.append(found)
    if not _checks(indices):
        raise ShareMistyped(N_("{where}: {indices}"), where=where, indices=_locate(indices, expected_length))
    mnemonic = " ".join(words[i] for i in indices)
    if check is not None and check != check_code(mnemonic):
        raise ShareMistyped(
            N_("{where}: the words do not match the check code typed with them ({check})"), where=where, check=check
        )
    return mnemonic
