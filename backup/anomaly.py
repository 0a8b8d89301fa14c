"""Ransomware signals in backups: what mass encryption does to the data a backup adds.

Encrypting files in place shows in the next backup before anyone notices at a desk: the
new data stops compressing (ciphertext is incompressible), almost nothing deduplicates
against the parent snapshot any more, and most files changed at once. Each backup's
figures are compared with thresholds learned from the same system's own earlier backups
(median plus four median absolute deviations, never closer than a floor), since what is
normal differs by system: a scanned-forms archive never compresses, a 住基 dump always does.
A backup is anomalous when its new data is incompressible beyond the learned threshold *and*
the share of new data or of changed files jumps too — one encrypted file a user saved is not
mass encryption. Files' content types (:mod:`backup.contenttype`) are the third clue: the share
of changed files whose known type (PDF, xlsx, text…) became no type at all says "ciphertext"
where compressibility cannot: documents that were compressed already (xlsx, PDF, PNG) stored
incompressible data on normal days too. Over its threshold with at least
:data:`MIN_TYPE_LOST_FILES` such files it is an anomaly on its own — ransomware that encrypts
only the documents of a tree otherwise left alone moves neither the share of changed files nor
of new bytes. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

#: earlier backups needed before anything is judged: fewer say nothing about normal
MIN_HISTORY = 3
#: at most this many earlier backups are learned from (the newest)
HISTORY = 30
#: new data below this many bytes says nothing about its compressibility
MIN_NEW_BYTES = 256 * 1024
_FLOORS = {"compressibility": 0.2, "type_lost": 0.25, "new_fraction": 0.25, "changed_fraction": 0.25}
#: the signals that say "this data is ciphertext now"; the others say "and a lot of it"
_LOOKS_ENCRYPTED = ("compressibility", "type_lost")
_MASS = ("new_fraction", "changed_fraction")
_SPREAD = 4.0
#: files that lost their type in one backup before that alone says mass encryption (fewer: a user's encrypted saves)
MIN_TYPE_LOST_FILES = 10


@dataclass(frozen=True)
class Signals:
    """One backup's figures, each 0..1 (None when the backup gives no basis for it)."""

    #: stored bytes / raw bytes of the data this backup added (1.0 = incompressible)
    compressibility: float | None
    #: raw bytes added / bytes read: how little deduplicated against what the repository held
    new_fraction: float | None
    #: files new or changed / files (directory sources)
    changed_fraction: float | None
    #: changed files whose known content type became none / changed files whose parent recorded
    #: a type (directory sources; None before the parent snapshot records types)
    type_lost: float | None = None
    #: how many files that was (not learned: the floor under the type signal on its own)
    files_type_lost: int = 0


def signals_of(
    *,
    raw_added: int,
    stored_added: int,
    bytes_total: int,
    files_changed: int,
    files_total: int,
    files_typed: int = 0,
    files_type_lost: int = 0,
) -> Signals:
    compress = stored_added / raw_added if raw_added >= MIN_NEW_BYTES else None
    return Signals(
        compressibility=min(1.0, compress) if compress is not None else None,
        new_fraction=min(1.0, raw_added / bytes_total) if bytes_total else None,
        changed_fraction=files_changed / files_total if files_total else None,
        type_lost=min(1.0, files_type_lost / files_typed) if files_typed else None,
        files_type_lost=files_type_lost,
    )


@dataclass(frozen=True)
class Verdict:
    anomalous: bool
    #: why, in one line (the signals over their thresholds), or why nothing was judged
    reason: str
    thresholds: dict[str, float]


def threshold(history: list[float], floor: float) -> float:
    centre = median(history)
    spread = median(abs(v - centre) for v in history)
    return centre + max(_SPREAD * spread, floor)


def judge(history: list[Signals], current: Signals) -> Verdict:
    """Whether ``current`` departs from ``history`` (oldest first) the way mass encryption does."""
    learned: dict[str, float] = {}
    over: list[str] = []
    for name, floor in _FLOORS.items():
        past = [v for s in history[-HISTORY:] if (v := getattr(s, name)) is not None]
        value = getattr(current, name)
        if len(past) < MIN_HISTORY or value is None:
            continue
        learned[name] = round(threshold(past, floor), 4)
        if value > learned[name]:
            over.append(f"{name} {value:.2f} > {learned[name]:.2f}")
    if not any(name in learned for name in _LOOKS_ENCRYPTED):
        return Verdict(False, "not enough history or new data to judge", learned)
    encrypted = any(o.startswith(_LOOKS_ENCRYPTED) for o in over)
    mass = any(o.startswith(_MASS) for o in over)
    types_gone = any(o.startswith("type_lost") for o in over) and current.files_type_lost >= MIN_TYPE_LOST_FILES
    if (encrypted and mass) or types_gone:
        return Verdict(True, "; ".join(over), learned)
    return Verdict(False, "; ".join(over) or "within this system's usual range", learned)
