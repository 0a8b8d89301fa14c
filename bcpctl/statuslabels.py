"""Status codes as people read them: a Japanese label with the code beside it (``合格 (passed)``).

A code (a run's status, a request's state, a host's result, a retention rule) is what scripts and
``--json`` carry and what an operator types back (``export list --status approved``); a Japanese
operator reads the label first and still sees the code. English shows the code as it is, so the
English output is unchanged. A code without a label is shown as it is.
"""

from __future__ import annotations

from bcpctl.i18n import LANGUAGES, N_, _, language

#: code -> its label (the msgid is the code's English word; its msgstr the Japanese)
LABELS = {
    # runs: drills, failovers, failbacks, readiness drills
    "passed": N_("status:passed"),
    "failed": N_("status:failed"),
    "aborted": N_("status:aborted"),
    "killed": N_("status:killed"),
    "running": N_("status:running"),
    # what a run was (drill list's kind and mode: failover.drillrequest.MODES and the export drill)
    "drill": N_("status:drill"),
    "failover": N_("status:failover"),
    "failback": N_("status:failback"),
    "readiness": N_("status:readiness"),
    "isolated": N_("status:isolated"),
    "point-in-time": N_("status:point-in-time"),
    "staff-loss": N_("status:staff-loss"),
    "switchover": N_("status:switchover"),
    "export": N_("status:export"),
    # export requests and their deliveries
    "pending": N_("status:pending"),
    "approved": N_("status:approved"),
    "denied": N_("status:denied"),
    "expired": N_("status:expired"),
    "ready": N_("status:ready"),
    "downloaded": N_("status:downloaded"),
    "deleted": N_("status:deleted"),
    # a playbook's result per host
    "ok": N_("status:ok"),
    "changed": N_("status:changed"),
    "unreachable": N_("status:unreachable"),
    "skipped": N_("status:skipped"),
    # key slots and locks
    "damaged": N_("status:damaged"),
    "passphrase": N_("status:passphrase"),
    "escrow": N_("status:escrow"),
    "keyfile": N_("status:keyfile"),
    "live": N_("status:live"),
    "stale": N_("status:stale"),
    "foreign": N_("status:foreign"),
    "unreadable": N_("status:unreadable"),
    # the control database's schema (dc.schema.State)
    "empty": N_("status:empty"),
    "unversioned": N_("status:unversioned"),
    "behind": N_("status:behind"),
    "current": N_("status:current"),
    "ahead": N_("status:ahead"),
    # the retention rules that keep a snapshot (backup.retention)
    "last": N_("status:last"),
    "hourly": N_("status:hourly"),
    "daily": N_("status:daily"),
    "weekly": N_("status:weekly"),
    "monthly": N_("status:monthly"),
    "yearly": N_("status:yearly"),
    "within": N_("status:within"),
}


#: what a snapshot was taken from (backup.sources.KINDS); ``source:`` keeps "path" the source apart
#: from "path" the kind of object (backup.kindnames)
SOURCE_LABELS = {
    "path": N_("source:path"),
    "sqlite": N_("source:sqlite"),
    "postgres": N_("source:postgres"),
    "postgres-wal": N_("source:postgres-wal"),
    "command": N_("source:command"),
}


def source_text(kind: str, spec: str) -> str:
    """A snapshot's source: ``kind:spec`` as ``--source`` takes it, in Japanese after the kind's label
    (``ファイルツリー (path:/srv/a)``), so the operator can still copy it back."""
    typed = f"{kind}:{spec}"
    label = SOURCE_LABELS.get(kind)
    if label is None or language() not in LANGUAGES:
        return typed
    shown = _(label)
    return typed if shown == label else f"{shown} ({typed})"


def status_text(code: str | None) -> str:
    """``code`` for people: as it is in English, ``<label> (<code>)`` in Japanese.

    The msgids carry a ``status:`` prefix so that a code's label never collides with the same
    English word used elsewhere as a header or a verb ("failed" the column, "failed" the run).
    """
    if not code:
        return ""
    label = LABELS.get(code)
    if label is None or language() not in LANGUAGES:
        return code
    shown = _(label)
    return code if shown == label else f"{shown} ({code})"


def status_list(codes: list[str]) -> str:
    """Several codes, comma-separated, each as :func:`status_text` shows it."""
    return ", ".join(status_text(code) for code in codes)
