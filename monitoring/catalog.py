"""Every metric bcpctl exports: name, type, help and labels, in one table.

The collector describes these families without touching the database (client_python calls
``describe()`` at registration), the alert rules and the dashboard may only name metrics
listed here (a test checks it), and label sets are fixed per family so that every label is
bounded by the configuration: site, tenant, system, host, job id — never snapshot ids,
request ids, paths or run ids (prometheus.io/docs/practices/naming, "Labels").
Names follow the Prometheus conventions: one ``bcp_`` prefix, base units, a unit suffix,
``_timestamp_seconds`` for Unix times and ``_total`` for counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Family:
    name: str
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...]


_SYSTEM = ("tenant", "system")
_SITE_SYSTEM = ("site", "tenant", "system")

FAMILIES: tuple[Family, ...] = (
    # -- configuration: the targets each municipality's BIA set (ICT-BCP), exported so that one
    #    rule compares every system with its own target.
    Family("bcp_system_rpo_seconds", "gauge", "Configured recovery point objective of the system.", _SYSTEM),
    Family("bcp_system_rto_seconds", "gauge", "Configured recovery time objective of the system.", _SYSTEM),
    # -- backups (dc.state.backup_runs)
    Family(
        "bcp_backup_last_success_timestamp_seconds",
        "gauge",
        "Finish time of the newest successful backup of the system into the site's repository.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_backup_last_run_ok",
        "gauge",
        "1 if the newest backup attempt of the system succeeded, 0 if it failed.",
        _SITE_SYSTEM,
    ),
    Family("bcp_backup_duration_seconds", "gauge", "Duration of the newest successful backup.", _SITE_SYSTEM),
    Family(
        "bcp_backup_read_bytes", "gauge", "Bytes read from the source by the newest successful backup.", _SITE_SYSTEM
    ),
    Family(
        "bcp_backup_added_bytes",
        "gauge",
        "Bytes the newest successful backup added to the repository after deduplication and compression.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_backup_anomaly",
        "gauge",
        "1 if the newest successful backup's new data looked like mass encryption (incompressible, "
        "little deduplicated, most files changed) against thresholds learned from the system's history.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_backup_signal_ratio",
        "gauge",
        "Ransomware signals of the newest successful backup, 0..1, by signal: compressibility (stored/raw of its "
        "new data), type_lost (changed files whose known content type became none), new_fraction, changed_fraction.",
        (*_SITE_SYSTEM, "signal"),
    ),
    # -- repository checks, scheduled or `bcpctl check --config` (monitoring.checks)
    Family("bcp_repository_check_ok", "gauge", "1 if the newest repository check found no problem.", ("site",)),
    Family("bcp_repository_check_timestamp_seconds", "gauge", "Finish time of the newest repository check.", ("site",)),
    Family("bcp_repository_check_problems", "gauge", "Problems the newest repository check reported.", ("site",)),
    Family(
        "bcp_repository_read_data_timestamp_seconds",
        "gauge",
        "Finish time of the newest repository check that read pack data (--read-data, whole or a subset).",
        ("site",),
    ),
    Family(
        "bcp_repository_check_read_bytes",
        "gauge",
        "Pack bytes the newest check downloaded and verified (its --read-data subset).",
        ("site",),
    ),
    # -- health checks run by the scheduler (monitoring.health)
    Family(
        "bcp_host_up",
        "gauge",
        "1 if the host answered the health probe named by the probe label, else 0.",
        ("site", "host", "probe"),
    ),
    Family(
        "bcp_repository_up", "gauge", "1 if the site's repository answered (its config object is readable).", ("site",)
    ),
    Family("bcp_repository_size_bytes", "gauge", "Total bytes of all objects in the site's repository.", ("site",)),
    Family(
        "bcp_repository_filesystem_avail_bytes",
        "gauge",
        "Bytes available on the filesystem holding a local repository.",
        ("site",),
    ),
    Family(
        "bcp_repository_filesystem_size_bytes", "gauge", "Size of the filesystem holding a local repository.", ("site",)
    ),
    Family("bcp_system_source_up", "gauge", "1 if the system's backup source could be opened for reading.", _SYSTEM),
    Family(
        "bcp_health_check_timestamp_seconds",
        "gauge",
        "When the health probe behind each health metric last ran, per kind of check.",
        ("check",),
    ),
    # -- the scheduler (monitoring.runs, monitoring.controller)
    Family("bcp_scheduler_job_runs", "counter", "Runs of the scheduled job that finished.", ("job_id",)),
    Family("bcp_scheduler_job_failures", "counter", "Runs of the scheduled job that failed.", ("job_id",)),
    Family(
        "bcp_scheduler_job_missed",
        "counter",
        "Scheduled runs skipped: too late for the misfire grace time, or the previous run still going.",
        ("job_id",),
    ),
    Family(
        "bcp_scheduler_job_consecutive_failures",
        "gauge",
        "Failed runs of the job since its last success.",
        ("job_id",),
    ),
    Family(
        "bcp_scheduler_job_last_success_timestamp_seconds",
        "gauge",
        "Finish time of the job's newest successful run.",
        ("job_id",),
    ),
    Family("bcp_scheduler_job_duration_seconds", "gauge", "Duration of the job's newest finished run.", ("job_id",)),
    Family("bcp_scheduler_leader", "gauge", "1 if this process is the active scheduler of its control database.", ()),
    Family(
        "bcp_metrics_source_ok",
        "gauge",
        "1 if the provider for this subsystem answered during this scrape; 0 means its metrics are missing.",
        ("source",),
    ),
    # -- replication (replication.ledger: replication_lag, replication_runs)
    Family(
        "bcp_replication_lag_seconds",
        "gauge",
        "How far the newest snapshot at the target site trails the newest at the source, per system.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_recovery_point_lag_seconds",
        "gauge",
        "How far the newest moment the target site can recover the system to trails the source's: "
        "the newest snapshot or, for postgres-wal systems, the newest archived WAL.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_recovery_point_measured_timestamp_seconds",
        "gauge",
        "When the target site's recovery point was last compared with the source's (by a "
        "replication run or a `replicate --follow` round); a lag measured long ago proves nothing.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_offsite_newest_snapshot_timestamp_seconds",
        "gauge",
        "Time of the newest snapshot of the system held at the offsite site.",
        _SITE_SYSTEM,
    ),
    Family(
        "bcp_replication_last_success_timestamp_seconds",
        "gauge",
        "Finish time of the newest successful replication run to the site.",
        ("site",),
    ),
    Family(
        "bcp_replication_last_run_ok",
        "gauge",
        "1 if the newest replication run to the site succeeded, 0 if it failed (or could not start).",
        ("site",),
    ),
    Family("bcp_replication_sent_bytes", "gauge", "Bytes the newest replication run to the site sent.", ("site",)),
    Family(
        "bcp_replication_pending_bytes",
        "gauge",
        "Bytes the system's backups added at the primary since its newest snapshot at the target site.",
        _SITE_SYSTEM,
    ),
    # -- the active site and the second copy (failover.activesite, failover.protection)
    Family("bcp_active_site", "gauge", "1 for the site serving production now, 0 for the others.", ("site",)),
    Family(
        "bcp_failed_over",
        "gauge",
        "1 while production runs at this site after a failover (0 at every site in normal operation).",
        ("site",),
    ),
    Family(
        "bcp_active_site_since_timestamp_seconds",
        "gauge",
        "When the active site began serving production (its failover or failback finished).",
        ("site",),
    ),
    Family(
        "bcp_system_protected",
        "gauge",
        "1 if a second site holds a copy of the system made from where it runs now, within its RPO "
        "(where it has one); 0 means a disaster at the active site would lose it.",
        _SYSTEM,
    ),
    # -- the control plane (failover.controlplane): the control state's own recovery point
    Family("bcp_control_plane_rpo_seconds", "gauge", "Configured control-plane RPO (control_plane.rpo).", ()),
    Family(
        "bcp_control_plane_copy_age_seconds",
        "gauge",
        "Age of the newest copy of the active site's control state at the site: what a disaster now would cost it.",
        ("site",),
    ),
    Family(
        "bcp_control_plane_standby_streaming",
        "gauge",
        "1 while the PostgreSQL standby of the control database at the site streams from the live one, else 0.",
        ("site",),
    ),
    Family(
        "bcp_control_plane_standby_lag_seconds",
        "gauge",
        "How far the replay of the PostgreSQL standby of the control database at the site is behind the live "
        "one (pg_stat_replication.replay_lag; 0 when caught up): what a disaster now would cost the control state.",
        ("site",),
    ),
    Family(
        "bcp_control_plane_failover_rpo_seconds",
        "gauge",
        "Control-plane RPO measured by the active failover to the site: the disaster minus the copy promoted.",
        ("site",),
    ),
    # -- drills (failover.records: drill_systems; failover.calendar: overdue)
    Family(
        "bcp_drill_last_success_timestamp_seconds",
        "gauge",
        "Finish time of the newest drill in which the system was restored and verified.",
        _SYSTEM,
    ),
    Family("bcp_drill_last_ok", "gauge", "1 if the system passed its newest drill, 0 if it failed.", _SYSTEM),
    Family("bcp_drill_rto_seconds", "gauge", "Recovery time measured for the system in its newest drill.", _SYSTEM),
    Family("bcp_drill_rpo_seconds", "gauge", "Recovery point measured for the system in its newest drill.", _SYSTEM),
    Family(
        "bcp_drill_overdue",
        "gauge",
        "1 if the system has not passed a drill within the configured number of days.",
        _SYSTEM,
    ),
    # -- victim-support exports (victim_support.store) and the audit chain (verified by the health job)
    Family("bcp_export_requests", "gauge", "Export requests by state.", ("state",)),
    Family(
        "bcp_evacuees_located",
        "gauge",
        "Residents of the town whom a partner's returned PFIF notes place in a shelter or report as seen.",
        ("tenant",),
    ),
    Family(
        "bcp_export_rehearsal_seconds",
        "gauge",
        "Time to deliver (the export's RTO) of the newest passed export rehearsal with the partner.",
        ("tenant", "partner"),
    ),
    Family(
        "bcp_export_rehearsal_last_success_timestamp_seconds",
        "gauge",
        "When the newest passed export rehearsal of the tenant with the partner ran.",
        ("tenant", "partner"),
    ),
    Family(
        "bcp_export_rehearsal_rto_seconds",
        "gauge",
        "Configured time to deliver a rehearsed export (exports.rehearsal.rto).",
        ("tenant",),
    ),
    Family(
        "bcp_export_rehearsal_overdue",
        "gauge",
        "1 if the tenant has passed no export rehearsal within exports.rehearsal.max_age.",
        ("tenant",),
    ),
    Family("bcp_audit_chain_ok", "gauge", "1 if the hash-chained audit log verified at its newest check.", ()),
    Family("bcp_audit_chain_verified_timestamp_seconds", "gauge", "When the audit chain was last verified.", ()),
    # -- data-center operations (dc.maintenance)
    Family("bcp_host_maintenance", "gauge", "1 while the host is in maintenance mode.", ("site", "host")),
)

BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}


def exposed_names(family: Family) -> tuple[str, ...]:
    """The sample names Prometheus sees for a family (counters gain ``_total``)."""
    if family.kind == "counter":
        return (family.name + "_total",)
    return (family.name,)
