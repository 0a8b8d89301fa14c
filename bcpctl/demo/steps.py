"""The story's steps and the state that flows from one to the next (bcpctl/demo/story.py runs them).

Each step calls the same core functions the commands call, checks its own result, and raises
:class:`StepFailed` when the story cannot go on.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bcpctl.demo import consortium as story
from bcpctl.demo import continuity, evacuees
from bcpctl.demo.evacuees import StepFailed, affected_areas
from bcpctl.demo.recovery import measured, printed, town_plan
from dc.errors import N_

#: ``progress(description)`` yields a callback taking a byte count (a bar on a terminal)
ProgressFactory = Callable[[str], AbstractContextManager[Callable[[int], None]]]
#: escrow: shares handed to custodians, and how many of them open the repository
SHARES, THRESHOLD = 5, 3
#: who keeps each share: an official of each town and the data center (printed on the sheets)
CUSTODIANS = (
    "常陸大宮市 会計管理者",
    "那珂市 会計管理者",
    "かすみがうら市 会計管理者",
    "五霞町 会計管理者",
    "データセンター長",
)
CUSTODIAN_CONTACT = "データセンター運用担当（デモ）内線 0000"


class StoryState:
    """The state that flows from one step to the next."""

    def __init__(self, workdir: Path, scale: float, progress: ProgressFactory, scope: story.Scope) -> None:
        self.workdir = workdir
        self.scope = scope
        self.scale = scale
        self.progress = progress
        self.rng = random.Random(20110311)
        self.config_path = workdir / "bcpctl.yaml"
        self.keys: story.KeyMaterial | None = None
        self.shares: list[str] = []
        self.backup: dict[str, Any] = {"bytes_in": 0, "bytes_stored": 0, "incremental_added_bytes": 0}
        self.replication: dict[str, Any] = {"objects": 0, "bytes": 0, "verified_without_key": False}
        self.drill: list[dict[str, Any]] = []
        self.failover: list[dict[str, Any]] = []
        self.export: dict[str, Any] = {}
        self.reports: dict[str, str] = {}
        self.control_plane: dict[str, Any] = {}
        self.status: dict[str, Any] = {}
        self.plan: dict[str, Any] = {}
        self.cost: dict[str, Any] = {}
        #: the site whose control state the story uses: the primary until the failover
        self.site = "primary"
        self.partner_token: Path | None = None
        self.disaster_at: datetime | None = None
        self.areas: tuple[str, ...] = ()
        self._config: tuple[Any, Path] | None = None
        self._state: Any = None

    # -- shared plumbing ---------------------------------------------------------------

    def config(self) -> tuple[Any, Path]:
        """The configuration written by step 1 (it does not change afterwards): read once."""
        if self._config is None:
            from dc.config import load_config

            config, path = load_config(self.config_path)
            self._config = (config, path.parent)
        return self._config

    def state(self) -> Any:
        """The control database of the site the story is at (the primary's, then the offsite's)."""
        if self._state is None:
            from dc.state import open_state

            self._state = open_state(self.config()[0].control_db_of(self.site))
        return self._state

    def run_context(self) -> Any:
        from failover.context import RunContext

        config, _ = self.config()
        return RunContext.create(config, self.config_path, self.state())

    # -- 1. the consortium --------------------------------------------------------------

    def create(self) -> dict[str, Any]:
        from dc.state import open_state
        from victim_support.seed import seed_registries
        from victim_support.settings import load_export_settings, registry_system

        raw = story.demo_config(self.workdir, self.scope)
        approvers = [
            story.FAILOVER_APPROVER,
            story.FAILOVER_OPERATOR,
            *(f"{evacuees.AFFECTED_TENANT}-{r}" for r in story.EXPORT_APPROVERS),
        ]
        self.keys = story.make_keys(self.workdir, list(raw["tenants"]), approvers)
        self._state = open_state(raw["sites"]["primary"]["control_db"], create=True)
        story.write_config(self.config_path, story.story_config(self.workdir, self.keys, self._state, self.scope))
        config, config_dir = self.config()
        token = self.portal_token(config)
        settings = load_export_settings(config, str(self.config_path))
        seeded = seed_registries(config, settings, scale=self.scale, seed=311, config_dir=config_dir)
        registries = {registry_system(config, settings, t) for t in config.tenants}
        others = 0
        for system_id, system in config.systems.items():
            if system_id in registries:
                continue
            if system.source.kind == "sqlite":
                tenant = config.tenants[system.tenant]
                people = max(100, int(tenant.population * self.scale))
                others += story.seed_records(Path(system.source.path), people, self.rng, day=1)
            else:
                others += story.seed_files(Path(system.source.path), 200, self.rng, day=1)
        residents = {r.tenant: r.counts.residents for r in seeded}
        self.plan = town_plan(config, story.PLAN_TOWN)
        # The town knows which districts the earthquake hit; the story picks them before the disaster.
        affected = config.systems[registry_system(config, settings, evacuees.AFFECTED_TENANT)].source.path
        self.areas = affected_areas(Path(affected or ""))
        if len(self.areas) < 2:
            raise StepFailed(
                N_("the seeded registry of {AFFECTED_TENANT} has too few 要支援者 (raise --scale)"),
                AFFECTED_TENANT=evacuees.AFFECTED_TENANT,
            )
        return {
            "config": str(self.config_path),
            "portal_token": token,
            "tenants": len(config.tenants),
            "systems": len(config.systems),
            "residents": residents,
            "affected_areas": list(self.areas),
            "other_records_and_files": others,
            "plan": {"tenant": self.plan["tenant"], "systems": self.plan["systems"]},
        }

    def portal_token(self, config: Any) -> str:
        """つくば市 gets its portal token at the primary (audited); the secret goes to the partner only."""
        from victim_support.tokens import issue_token

        issued = issue_token(
            self.state(),
            config,
            story.PARTNER,
            label="つくば市 防災危機管理課",
            issued_by="demo-operator",
            lifetime=30 * 86400,
            now=datetime.now(UTC),
        )
        self.partner_token = story.partner_secret(self.workdir, issued.secret)
        return issued.info.id

    # -- 2. repository and escrow -------------------------------------------------------

    def init_and_escrow(self) -> dict[str, Any]:
        from backup.escrow import prepare_share_dir, split_key, write_printable_sheets, write_share_sheets
        from backup.jobs import site_repository
        from backup.opening import init_repository
        from dc.clock import utcnow
        from dc.printing import chromium
        from storage.site import open_site

        config, config_dir = self.config()
        assert self.keys is not None
        primary = config.sites[config.primary_site].repository
        backend = open_site(config, config.primary_site, config_dir=config_dir, create=True)
        init_repository(backend, self.keys.passphrase.read_text().strip())
        custodians = self.workdir / "custodians"
        prepare_share_dir(custodians)
        with site_repository(config, config.primary_site, config_dir) as repo:
            split = split_key(repo, shares=SHARES, threshold=THRESHOLD, label="custodians")
            self.shares = write_share_sheets(split, custodians, repo.backend.url, CUSTODIANS)
            # what each custodian keeps in a safe: the Japanese sheet, printed where a Chromium is
            sheets = write_printable_sheets(
                split,
                custodians,
                repo.backend.url,
                made_at=utcnow(),
                custodians=CUSTODIANS,
                contact=CUSTODIAN_CONTACT,
                pdf=chromium() is not None,
            )
        self.reports.update({f"escrow sheet {Path(f).name}": f for f in sheets.files})
        return {
            "repository": primary,
            "escrow_slot": split.slot_id,
            "shares": SHARES,
            "threshold": THRESHOLD,
            "sheets": len(sheets.files),
        }

    # -- 3. backups ----------------------------------------------------------------------

    def backup_day(self, day: int) -> dict[str, Any]:
        from backup.jobs import backup_systems, site_repository
        from victim_support.settings import load_export_settings, registry_system

        config, config_dir = self.config()
        changed = 0
        if day == 2:
            settings = load_export_settings(config, str(self.config_path))
            registries = {registry_system(config, settings, t) for t in config.tenants}
            for system_id, system in config.systems.items():
                source = Path(system.source.path or "")
                if system_id in registries:
                    changed += story.registry_changes(source, self.rng)
                elif system.source.kind == "sqlite":
                    changed += story.seed_records(source, 50, self.rng, day=2)
                else:
                    changed += story.seed_files(source, 200, self.rng, day=2)
        label = "day 1: full backup" if day == 1 else "day 2: incremental backup"
        with self.progress(label) as advance:
            with site_repository(config, config.primary_site, config_dir) as repo:
                outcomes = backup_systems(
                    config, repo, None, state=self.state(), config_dir=config_dir, progress=advance
                )
        failed = [f"{o.system}: {o.error}" for o in outcomes if not o.ok]
        if failed:
            raise StepFailed(N_("{n_failed} backup(s) failed, first: {failed}"), n_failed=len(failed), failed=failed[0])
        results = [o.result for o in outcomes if o.result]
        added = sum(r.bytes_added for r in results)
        total = sum(r.bytes_total for r in results)
        if day == 1:
            self.backup.update(bytes_in=total, bytes_stored=added)
        else:
            read = sum(r.bytes_read for r in results)
            self.backup.update(incremental_added_bytes=added, incremental_bytes_in=total, incremental_bytes_read=read)
            if not 0 < added < self.backup["bytes_stored"]:
                raise StepFailed(N_("the incremental added {added} bytes: not a deduplicated incremental"), added=added)
        return {"systems": len(outcomes), "bytes_in": total, "bytes_added": added, "rows_or_files_changed": changed}

    # -- 4. replication ------------------------------------------------------------------

    def replicate(self) -> dict[str, Any]:
        from failover.control_sqlite import SqliteShipping
        from replication.jobs import replicate_sites
        from replication.sync import SyncOptions, SyncProgress
        from replication.verify import verify_repository
        from storage.site import open_site

        config, config_dir = self.config()
        assert self.keys is not None
        # The control state's copy is an encrypted backup, taken with the key like any other;
        # then the passphrase is sealed away: replication and verification need no key.
        copy, added, _ = SqliteShipping(config, config_dir).take_copy(now=datetime.now(UTC))
        sealed = self.keys.passphrase.with_name(".passphrase.sealed")
        self.keys.passphrase.rename(sealed)
        try:
            with self.progress("replicating ciphertext offsite") as advance:
                runs = replicate_sites(
                    config, config_dir, SyncOptions(), progress=SyncProgress(lambda t: None, advance)
                )
            problems = [r.problem() for r in runs if r.problem()]
            if problems:
                raise StepFailed(problems[0] or "replication failed")
            report = verify_repository(open_site(config, config.offsite_sites[0], config_dir=config_dir))
        finally:
            sealed.rename(self.keys.passphrase)
        self.replication.update(
            objects=sum(r.objects_copied for r in runs),
            bytes=sum(r.bytes_sent for r in runs),
            seconds=round(sum(r.seconds for r in runs), 3),
            manifest_sequence=report.manifest_sequence,
            objects_verified=report.objects_checked,
            bytes_verified=report.bytes_checked,
            verified_without_key=report.ok,
            control_copy={"snapshot": (copy.snapshot_id or "")[:12], "time": copy.time.isoformat(), "bytes": added},
        )
        if not report.ok:
            raise StepFailed(report.summary())
        return dict(self.replication)

    # -- 5. disaster, failover, drill ----------------------------------------------------

    def disaster(self) -> dict[str, Any]:
        assert self.keys is not None
        primary = self.workdir / "primary"
        if self._state is not None:  # the primary's control database goes with the primary
            self._state.dispose()
            self._state = None
        shutil.rmtree(primary)
        # From here on the story runs at the offsite: its own index cache, its own state.
        os.environ["BCPCTL_CACHE_DIR"] = str(self.workdir / "offsite" / "cache")
        self.disaster_at = datetime.now(UTC)
        if primary.exists():
            raise StepFailed(N_("the primary site could not be removed"))
        return {"removed": [str(primary)], "declared_at": self.disaster_at.isoformat(timespec="seconds")}

    def fail_over(self) -> dict[str, Any]:
        from dc.secrets import read_secret_file
        from failover.context import RunContext
        from failover.failover import FailoverRequest, execute_failover

        config, _ = self.config()
        assert self.keys is not None and self.disaster_at is not None
        request = FailoverRequest(
            to_site=config.offsite_sites[0],
            confirmed=True,
            approver=story.FAILOVER_APPROVER,
            approver_secret=read_secret_file(self.keys.approver_secrets[story.FAILOVER_APPROVER]),
            operator=story.FAILOVER_OPERATOR,
            operator_secret=read_secret_file(self.keys.approver_secrets[story.FAILOVER_OPERATOR]),
            escrow=tuple(self.shares[SHARES - THRESHOLD :]),  # three custodians
            declared_at=self.disaster_at,
        )
        # No control database is opened here: the failover opens the offsite's, promoted first.
        ctx = RunContext.create(config, self.config_path)
        with self.progress("failover: restoring every system at the offsite site") as advance:
            result = execute_failover(ctx, request, on_bytes=advance)
        self.site, self._state = request.to_site, ctx.state
        self.failover = [measured(s) for s in result.systems]
        self.reports["failover"] = result.reports.get("html", "")
        # the 訓練実施報告 each municipality files, and the bilingual report printed for the 災害対策本部
        self.reports.update({f"failover {k}": v for k, v in result.reports.items() if k.startswith("ja:")})
        self.reports["failover pdf"] = printed(self.reports["failover"])
        if result.status != "passed":
            raise StepFailed(N_("failover {status}: {result_}"), status=result.status, result_=result.verdict()[1])
        late = [s["system"] for s in self.failover if not (s["rto_met"] and s["rpo_met"])]
        if late:
            raise StepFailed(N_("RTO or RPO target missed by {late}"), late=", ".join(late))
        assert self.partner_token is not None
        state = self.state()
        self.control_plane = continuity.control_state(config, state, result.control_plane or {}, self.partner_token)
        self.status = continuity.site_status(config, state)
        if not (self.control_plane["audit_verified_across_failover"] and self.control_plane["partner_token_valid"]):
            raise StepFailed(
                N_("the control state did not come through the failover: {control_plane}"),
                control_plane=self.control_plane,
            )
        return {
            "run": result.id,
            "systems": len(self.failover),
            "report": self.reports["failover"],
            "control_plane_rpo_seconds": self.control_plane["rpo_seconds"],
        }

    def staff_loss_drill(self) -> dict[str, Any]:
        from failover.drill import run_drill
        from failover.drillrequest import DrillRequest

        escrow = tuple(self.shares[:THRESHOLD])
        with self.progress("staff-loss drill at the offsite site") as advance:
            result = run_drill(self.run_context(), DrillRequest(mode="staff-loss", escrow=escrow), on_bytes=advance)
        self.drill = [measured(s) for s in result.systems]
        self.reports["drill"] = result.reports.get("html", "")
        if result.status != "passed":
            raise StepFailed(
                N_("staff-loss drill {status}: {result_}"), status=result.status, result_=result.verdict()[1]
            )
        return {
            "run": result.id,
            "shares_used": len(escrow),
            "systems": len(self.drill),
            "report": self.reports["drill"],
        }

    def rekey(self) -> dict[str, Any]:
        """The offsite team gets its own passphrase, opened from escrow (the primary's is gone)."""
        from backup.escrow import open_repository_with_shares
        from backup.keyslots import add_passphrase_slot
        from storage.site import open_site

        config, config_dir = self.config()
        assert self.keys is not None
        passphrase = story.write_passphrase(self.keys.offsite_passphrase)
        offsite = open_site(config, config.offsite_sites[0], config_dir=config_dir)
        with open_repository_with_shares(offsite, self.shares[1 : 1 + THRESHOLD]) as repo:
            slot = add_passphrase_slot(repo, passphrase.read_text().strip(), label="offsite-operators")
        return {"slot": slot, "passphrase_file": str(passphrase)}

    # -- the last step: the 協議会's cost sheet ----------------------------------------------

    def cost_sheet(self) -> dict[str, Any]:
        """The split of the shared contract with the usage the story measured (drills never billed)."""
        from dc.cost import parse_costs
        from dc.costsheet import write_sheet
        from dc.costsplit import split_costs
        from dc.usage import measure_usage

        config, _ = self.config()
        costs = parse_costs(config.costs, str(self.config_path), config.tenants)
        tenants = {tid: (t.name, t.population) for tid, t in config.tenants.items()}
        split = split_costs(costs, tenants, measure_usage(self.state()))
        sheet = write_sheet(split, config.consortium, self.workdir / "cost-sheet.html")
        self.reports["cost sheet"] = str(sheet)
        self.cost = {
            "sheet": str(sheet),
            "total_yen": split.total_yen,
            "before_total_yen": split.before_total_yen,
            "saving_pct": split.saving_pct,
            "tenants": [
                {"name": t.name, "before_yen": t.before_yen, "yen": t.yen, "saving_pct": t.saving_pct,
                 "projection_saving_pct": t.projection_saving_pct}
                for t in split.tenants
            ],
        }  # fmt: skip
        return {"sheet": str(sheet), "total_yen": split.total_yen, "saving_pct": split.saving_pct}

    # -- 6. the victim-support export ------------------------------------------------------

    def export_for_partner(self) -> dict[str, Any]:
        assert self.keys is not None and self.disaster_at is not None
        config, _ = self.config()
        self.export = evacuees.export_to_partner(
            config, self.config_path, self.state(), self.keys, self.areas, self.disaster_at, self.workdir
        )
        return dict(self.export)

    def find_one_evacuee(self) -> dict[str, Any]:
        assert self.keys is not None
        config, _ = self.config()
        return evacuees.find_and_answer(config, self.config_path, self.state(), self.keys, self.workdir)
