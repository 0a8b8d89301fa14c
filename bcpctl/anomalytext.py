"""What a person reads when a backup looks mass-encrypted (``BackupAnomaly``), in their language.

The core (backup/anomaly.py) records its reason as ``signal value > threshold; …`` with the
signals' own names, the same in ``--json`` and the control database whatever the locale; this
module only words those signals for the warning a terminal shows.
"""

from __future__ import annotations

from bcpctl.i18n import N_, _

#: the signals of backup.anomaly.Signals, as a person reads them
SIGNALS = {
    "compressibility": N_("new data does not compress"),
    "type_lost": N_("files' content types lost"),
    "new_fraction": N_("new data not deduplicated"),
    "changed_fraction": N_("files changed"),
}


def reason_text(reason: str) -> str:
    """``reason`` with each signal's name in words; a part it does not know is shown as recorded."""
    parts = []
    for part in reason.split("; "):
        name, _sep, figures = part.partition(" ")
        parts.append(f"{_(SIGNALS[name])} {figures}" if name in SIGNALS else part)
    return "; ".join(parts)


def anomaly_warning(system: str | None, reason: str, last_known_good: str | None) -> str:
    return _("BackupAnomaly: {system} looks mass-encrypted ({reasons}); last known good snapshot {good}").format(
        system=system or "source", reasons=reason_text(reason), good=(last_known_good or "none")[:8]
    )
