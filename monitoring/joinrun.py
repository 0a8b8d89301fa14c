"""``tenant join``: the joiner's configuration, keys and schedule, written where a reviewer sees them.

The new configuration is a new file (never the old one rewritten: the 協議会 reviews the diff, and
the running scheduler keeps reading the file it was started with until someone switches it). The
town's export signing key and pseudonym secret are created 0600 in their own directory; the
backup jobs are the scheduler's own plan of the new file (monitoring.schedule), so what is shown
is what will run.

The town's export approvers are named in the new file but have no credential yet: each official
enrols their own secret (``bcpctl approver enroll``) and the 協議会 confirms the printed
credential id out of band before the line goes into ``approvers:``. Until every one of them is
enrolled, nobody approves an export of the town's residents (victim_support.approval), so a
town whose officials have not yet been enrolled cannot have its residents' list released.
"""

from __future__ import annotations

import copy
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.approvers import check_name
from dc.config import Consortium, load_config, parse_config
from dc.errors import N_, UsageError
from dc.proration import FiscalYearSplit
from failover.joincosts import comment_lines, contract_change, costs_text
from failover.joining import Joiner, join_text, plan_join, review_diff
from monitoring.schedule import plan_jobs
from victim_support.settings import load_export_settings
from victim_support.signing import fingerprint


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
    #: the shared contract's total in the new file, and the change written into it (None without costs:)
    contract: dict[str, Any] | None = None
    #: what each of the town's export approvers must do before its exports can be approved
    approver_steps: list[dict[str, Any]] | None = None
    #: the town's export signing key, as partners confirm it (OpenSSH SHA256 fingerprint)
    signing_key_fingerprint: str | None = None
    #: with ``--from``: the 年度 it joins in, every town's bill by its months (dc/proration.py)
    fiscal_year: FiscalYearSplit | None = None


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
    approvers: tuple[str, ...] = (),
) -> JoinResult:
    """Write ``out`` (the configuration with the joiner), ``out``.diff, and the joiner's keys."""
    if out.resolve() == config_path.resolve():
        raise UsageError(N_("--out is the configuration itself: tenant join never edits it in place"))
    for path in (out, out.with_name(out.name + ".diff")):
        if path.exists():
            raise UsageError(N_("{path} exists: tenant join writes new files only"), path=path)
    what_if = plan_join(raw, joiner, {}, str(config_path))  # every check, before anything is written
    before = parse_config(copy.deepcopy(raw), str(config_path))
    names = approver_names(before, joiner.id, approvers)
    sign, pseudonym = keys_dir / f"{joiner.id}.ed25519", keys_dir / f"{joiner.id}.pseudonym-secret"
    exports = {"approvers": list(names), "signing_key_file": str(sign), "pseudonym_secret_file": str(pseudonym)}
    extra: dict[tuple[str, ...], Mapping[str, Any]] = {("exports", "tenants"): {joiner.id: exports}}
    new_text = join_text(text, raw, joiner, what_if.like, extra)
    if raw.get("exports") and joiner.id not in ((yaml.safe_load(new_text).get("exports") or {}).get("tenants") or {}):
        raise UsageError(
            N_("{config_path} has no exports: block to name {id}'s approvers in: add one, then join"),
            config_path=config_path,
            id=joiner.id,
        )
    change = contract_change(before, parse_config(yaml.safe_load(new_text), str(out)), joiner.population, {}, "")
    if change is not None:
        new_text = costs_text(new_text, change, joiner.name, joiner.lg_code, what_if.fiscal_year)
    written = parse_config(yaml.safe_load(new_text), str(out))  # what we write must load
    if (
        change is not None
        and written.costs
        and sum(i["yen"] for i in written.costs["after"]["items"]) != (change.with_joiner_yen)
    ):
        raise UsageError(
            N_("{config_path}: costs.after.items could not be updated in place; write them by hand"),
            config_path=config_path,
        )
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
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
    contract = None
    if change is not None:
        contract = {
            "now_yen": change.now_yen,
            "with_joiner_yen": change.with_joiner_yen,
            "priced": change.priced,
            "basis": change.basis,
            "bills": change.bills,
            "comment": comment_lines(change, joiner.name, joiner.lg_code, what_if.fiscal_year),
        }
    result = JoinResult(
        joiner.id,
        str(out),
        str(diff),
        [str(sign), str(pseudonym)],
        what_if.systems,
        jobs,
        contract=contract,
        approver_steps=approver_steps(out, names),
        signing_key_fingerprint=fingerprint(private.public_key()),
        fiscal_year=what_if.fiscal_year,
    )
    if not first_run:
        return result
    backups, readiness = first_backup_and_drill(out, joiner.id, what_if.systems)
    return JoinResult(**{**result.__dict__, "first_backup": backups, "readiness": readiness})


def approver_names(config: Consortium, tenant: str, given: tuple[str, ...]) -> tuple[str, ...]:
    """The town's export approvers: those given, else ``<tenant>-approver-N`` for as many as the
    strictest basis's two-person rule needs; never a name the configuration already uses."""
    settings = load_export_settings(config)
    needed = max([settings.default_approvals, *settings.approvals.values()])
    names = given or tuple(f"{tenant}-approver-{n}" for n in range(1, needed + 1))
    for name in names:
        check_name(name)
    if len(set(names)) != len(names):
        raise UsageError(N_("--approver: each approver is a different person (a name was given twice)"))
    if len(names) < needed:
        raise UsageError(
            N_("--approver: {needed} approvers needed (the strictest basis's two-person rule)"), needed=needed
        )
    taken = set(config.approvers) | {
        a for t in settings.tenants.values() for a in (*t.approvers, *t.alternate_approvers)
    }
    taken |= set(settings.alternate_approvers)
    if clash := sorted(taken & set(names)):
        raise UsageError(N_("--approver: {clash} already approves for another town"), clash=", ".join(clash))
    return names


def approver_steps(config_path: Path, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """What each approver does: enrol their own secret, have the credential id confirmed out of band,
    and have the printed line added under ``approvers:``. The secret file is theirs, not the keys dir's
    (the operator who ran the join must not hold it): the path shown is a suggestion for their machine."""
    return [
        {
            "approver": name,
            "enrolled": False,
            "command": f"bcpctl approver enroll --config {config_path} --approver {name} "
            f"--secret-file ~/{name}.secret --generate",
            "confirm": "read the printed credential id (apk-…) aloud to the 協議会 secretariat, "
            "which compares it with the line before adding it under approvers:",
        }
        for name in names
    ]


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
