"""Step 5's proof: what the offsite's control state holds after the failover, read from it alone.

The failover opened the control state shipped from the primary before anything else; here
the story checks it the way an operator at the offsite would: the audit chain verifies across
the failover and states what stayed at the primary, the partner city's portal token issued at
the primary still opens the portal, and the failover records say which site serves and that
nothing protects it yet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bcpctl.demo.consortium import PARTNER
from dc.config import Consortium


def control_state(config: Consortium, state: Any, promoted: dict[str, Any], token_file: Path) -> dict[str, Any]:
    """``demo --json``'s ``control_plane``: active site, measured RPO, the chain across the failover."""
    from dc.secrets import read_secret_file
    from failover.records import active_failover
    from victim_support.integrity import verify_control_state
    from victim_support.tokens import partner_for_token

    chain = verify_control_state(state, None, datetime.now(UTC), config=config)
    gaps = chain.failovers
    active = active_failover(state)
    token = read_secret_file(token_file, "portal token")
    copy = promoted.get("copy") or {}
    return {
        "active_site": active.target_site if active else None,
        "rpo_seconds": promoted.get("rpo_seconds"),
        "audit_verified_across_failover": chain.ok and bool(gaps) and gaps[-1]["source"] == "restored",
        "lost_audit_entries": {
            "after_seq": gaps[-1]["received_seq"] if gaps else None,
            "copy_time": copy.get("time"),
            # the primary and its chain are gone: what it wrote after the copy cannot be counted
            "count": None,
            "statement": gaps[-1]["statement"] if gaps else "no failover in the audit chain",
        },
        "source": promoted.get("source"),
        "copy_time": copy.get("time"),
        "audit_entries": chain.entries,
        "partner_token_valid": partner_for_token(state, config, token, datetime.now(UTC)) == PARTNER,
    }


def site_status(config: Consortium, state: Any) -> dict[str, Any]:
    """``demo --json``'s ``status``, from the failover records: the active site, and whether a
    second site protects it.

    While a failover is active nothing replicates the offsite's backups to another site yet, so
    it runs unprotected; in normal operation the primary is protected by its offsite.
    """
    from failover.records import active_failover

    active = active_failover(state)
    site = active.target_site if active and active.target_site else config.primary_site
    return {
        "active_site": site,
        "since": active.declared_at.isoformat() if active else None,
        "protected": active is None and bool(config.offsite_sites),
    }
