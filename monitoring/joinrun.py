"""``tenant join``: the joiner's configuration, keys and schedule, written where a reviewer sees them.

The new configuration is a new file (never the old one rewritten: the 協議会 reviews the diff, and
the running scheduler keeps reading the file it was started with until someone switches it). The
town's export signing key and pseudonym secret are created 0600 in their own directory; the
backup jobs are the scheduler's own plan of the new file (monitoring.schedule), so what is shown
is what will run.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.config import load_config, parse_config
from dc.errors import N_, UsageError
from failover.joining import Joiner, join_text, plan_join, review_diff
from monitoring.schedule import plan_jobs


@dataclass(frozen=True)
class JoinResult:
    tenant: str
    config: str
    diff: str
    keys: list[str]
    systems: list[str]
    schedule: list[dict[str, Any]]
    #: with ``first_run``: the first backup of each new system and the readiness drill after it
    first_backup: list[dict[str, Any]] | None = None
    readiness: dict[str, Any] | None = None


def _new_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Create ``path`` with ``text``; an existing file is never replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise UsageError(N_("{path} exists: tenant join writes new files only"), path=path) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def join_tenant(
    config_path: Path,
    text: str,
    raw: dict[str, Any],
    joiner: Joiner,
    out: Path,
    keys_dir: Path,
    *,
    first_run: bool = False,
) -> JoinResult:
    """Write ``out`` (the configuration with the joiner), ``out``.diff, and the joiner's keys."""
    if out.resolve() == config_path.resolve():
        raise UsageError(N_("--out is the configuration itself: tenant join never edits it in place"))
    for path in (out, out.with_name(out.name + ".diff")):
        if path.exists():
            raise UsageError(N_("{path} exists: tenant join writes new files only"), path=path)
    what_if = plan_join(raw, joiner, {}, str(config_path))  # every check, before anything is written
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    sign, pseudonym = keys_dir / f"{joiner.id}.ed25519", keys_dir / f"{joiner.id}.pseudonym-secret"
    extra: dict[tuple[str, ...], Mapping[str, Any]] = {
        ("exports", "tenants"): {joiner.id: {"signing_key_file": str(sign), "pseudonym_secret_file": str(pseudonym)}}
    }
    new_text = join_text(text, raw, joiner, what_if.like, extra)
    parse_config(yaml.safe_load(new_text), str(out))  # what we write must load
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    _new_file(sign, pem.decode(), 0o600)
    _new_file(pseudonym, secrets.token_urlsafe(32) + "\n", 0o600)
    _new_file(out, new_text)
    diff = out.with_name(out.name + ".diff")
    _new_file(diff, review_diff(text, new_text, str(config_path), str(out)))
    config, _ = load_config(out)
    jobs = [
        {"system": job.system, "interval": job.interval, "site": job.site}
        for job in plan_jobs(config, ("backup",))
        if job.tenant == joiner.id
    ]
    result = JoinResult(joiner.id, str(out), str(diff), [str(sign), str(pseudonym)], what_if.systems, jobs)
    if not first_run:
        return result
    backups, readiness = first_backup_and_drill(out, joiner.id, what_if.systems)
    return JoinResult(**{**result.__dict__, "first_backup": backups, "readiness": readiness})


def first_backup_and_drill(
    config_path: Path, tenant: str, systems: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The new systems' first backup at the primary, then a readiness drill of the tenant: what the
    joiner's first drill would find missing (sources, targets, keys) is named before the agreement starts."""
    from backup.jobs import backup_systems, site_repository
    from dc.state import open_state
    from failover.context import RunContext
    from failover.drill import run_drill
    from failover.drillrequest import DrillRequest
    from replication.jobs import replicate_sites
    from replication.sync import SyncOptions

    config, resolved = load_config(config_path)
    state = open_state(config.control_db)
    with site_repository(config, config.primary_site, resolved.parent) as repo:
        outcomes = backup_systems(config, repo, systems, state=state, config_dir=resolved.parent)
    backups = [{"system": o.system, "ok": o.ok, "error": o.error} for o in outcomes]
    # the readiness drill asks the offsite: ship the first snapshots there as the scheduler would
    shipped = replicate_sites(config, resolved.parent, SyncOptions())
    backups += [{"system": f"replicate:{r.target}", "ok": r.ok, "error": r.problem()} for r in shipped]
    run = run_drill(
        RunContext.create(config, resolved, state), DrillRequest(mode="readiness", tenant=tenant), handle_signals=False
    )
    status, why = run.verdict()
    return backups, {"run": run.id, "status": run.status, "verdict": status, "why": why}
