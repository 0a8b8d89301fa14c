"""What each kind of repository object is called in a line for people.

The kinds are codes the code compares (``found.kind == "key slot"``) and ``--json`` carries; a
line that names one (check's and repair's findings, a size refusal, a pattern refusal) puts in
the noun from here instead, which the CLI shows in the operator's language.
tests/bcpctl/test_japanese_nouns.py fails when a kind that :mod:`backup.layout` or
:mod:`backup.objectsize` can produce has no noun here.
"""

from __future__ import annotations

from dc.errors import N_, Reason

#: kind code -> its noun: in English the code itself (English lines stay as they were), in Japanese
#: the catalog's ``kind:<code>`` (a prefix, as statuslabels' ``status:``, so the noun never collides
#: with the same English word used as a column header, "snapshot" the header beside its English)
KIND_NOUNS: dict[str, Reason] = {
    "config": Reason("config", N_("kind:config")),
    "manifest": Reason("manifest", N_("kind:manifest")),
    "manifest link": Reason("manifest link", N_("kind:manifest link")),
    "key slot": Reason("key slot", N_("kind:key slot")),
    "lock": Reason("lock", N_("kind:lock")),
    "index": Reason("index", N_("kind:index")),
    "snapshot": Reason("snapshot", N_("kind:snapshot")),
    "tombstone": Reason("tombstone", N_("kind:tombstone")),
    "wal": Reason("wal", N_("kind:wal")),
    "data pack": Reason("data pack", N_("kind:data pack")),
    "meta pack": Reason("meta pack", N_("kind:meta pack")),
    "damaged pack": Reason("damaged pack", N_("kind:damaged pack")),
    "pack": Reason("pack", N_("kind:pack")),
    "object": Reason("object", N_("kind:object")),
    "JSON document": Reason("JSON document", N_("kind:JSON document")),
    # what a snapshot path or a restore pattern is, in backup.patterns' refusals
    "path": Reason("path", N_("kind:path")),
    "pattern": Reason("pattern", N_("kind:pattern")),
}


def noun(kind: str | None) -> str:
    """``kind``'s noun for a line (the kind itself when it has none, ``""`` for ``None``)."""
    if kind is None:
        return ""
    return KIND_NOUNS.get(kind, kind)
