"""What ``check`` found: problems, notes, the snapshots they affect and the commands that repair them.

The structural and data checks (:mod:`backup.check`) and the inventory against the signed
manifest (:mod:`backup.inventory`) report into one :class:`CheckReport`; repair names what it
could not fix as a :class:`Problem` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dc.errors import N_, Message

REPAIR_INDEX = "bcpctl repair index"
REPAIR_INDEX_ALL = "bcpctl repair index --read-all-packs"
REPAIR_SNAPSHOTS = "bcpctl repair snapshots --forget"
PRUNE = Message(N_("bcpctl prune (removes packs no snapshot needs once its grace period has passed)"))
_ORDER = (REPAIR_INDEX_ALL, REPAIR_INDEX, REPAIR_SNAPSHOTS, PRUNE)


@dataclass(frozen=True)
class Problem:
    object: str
    message: str


@dataclass
class CheckReport:
    snapshots: int = 0
    index_files: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs_read: int = 0
    bytes_read: int = 0
    #: packs stored that no readable index names (an interrupted backup, or a lost index file)
    unindexed_packs: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: findings that endanger nothing (copies, stray files, leases, packs in no index); not failures
    notes: list[Problem] = field(default_factory=list)
    affected_snapshots: list[str] = field(default_factory=list)
    #: the commands that repair what was found, in the order to run them
    remedies: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def suggest(self, remedy: str) -> None:
        if remedy not in self.remedies:
            self.remedies.append(remedy)
            self.remedies.sort(key=_ORDER.index)
