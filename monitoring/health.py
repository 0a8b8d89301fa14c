"""Health probes: hosts, repositories, their filesystems, the systems' sources, the audit chain.

Each probe returns an :class:`~monitoring.observations.Observation` and never raises: a
failure is a result. A host whose site pins a ``known_hosts`` file is probed through the dc/
SSH controller (``probe=ssh``: connect, strict host key, authenticate); an unknown or changed
host key counts as down, loudly. Without pinned keys there is no strict SSH check, so the
host gets a TCP connect to its SSH port instead, recorded as ``probe=tcp_connect`` so nobody
mistakes it for an authenticated check; that probe contacts loopback addresses only (the
project's network rule: no traffic beyond 127.0.0.0/8 and ::1) and records any other address
as not probed, which exports nothing rather than a guess.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from backup.jobs import resolve_path
from backup.sources import redact_dsn
from dc.clock import utcnow
from dc.config import Consortium, Host, System
from dc.errors import BcpError
from monitoring import observations
from monitoring.observations import Observation
from storage.local import LocalBackend
from storage.site import open_site

TCP_PROBE = "tcp_connect"
#: listing a remote repository costs one request per 1000 objects: size it hourly, not per run.
REMOTE_SIZE_EVERY = timedelta(hours=1)


def is_loopback(address: str) -> bool:
    """Only literal loopback addresses (and ``localhost``); names are never resolved here."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, BcpError) else _first_line(exc)


def probe_host_tcp(host_id: str, host: Host, timeout: float) -> Observation:
    now = utcnow()
    base = Observation("host", host_id, None, now, site=host.site, probe=TCP_PROBE)
    if not is_loopback(host.address):
        return replace(base, ok=None, detail="not probed: the TCP probe contacts loopback addresses only")
    try:
        with socket.create_connection((host.address, host.port), timeout=timeout):
            pass
    except OSError as exc:
        return replace(base, ok=False, detail=_first_line(exc))
    return replace(base, ok=True)


SSH_PROBE = "ssh"


def probe_host_ssh(
    host_id: str, host: Host, config: Consortium, config_dir: Path | None, timeout: float
) -> Observation:
    """Connect and authenticate through ``dc.ssh`` with the site's pinned known_hosts."""
    from dc.inventory import managed_host
    from dc.ssh import connect

    now = utcnow()
    base = Observation("host", host_id, None, now, site=host.site, probe=SSH_PROBE)
    try:
        # Only this host: another site's missing known_hosts is that host's problem, not this one's.
        alone = config.model_copy(update={"hosts": {host_id: host}})
        with connect(managed_host(alone, host_id, config_dir), timeout=timeout):
            pass
    except Exception as exc:  # unreachable, refused, unknown or CHANGED host key, rejected key
        return replace(base, ok=False, detail=_reason(exc))
    return replace(base, ok=True)


def probe_host(host_id: str, config: Consortium, config_dir: Path | None, timeout: float) -> Observation:
    host = config.hosts[host_id]
    if config.sites[host.site].known_hosts:
        return probe_host_ssh(host_id, host, config, config_dir, timeout)
    return probe_host_tcp(host_id, host, timeout)


def verify_audit_chain(engine: Engine) -> Observation:
    """Verify the export audit log's hash chain against the head this job saw last time.

    The remembered head is an anchor: without it, deleting the newest entries would leave a
    shorter chain that still verifies.
    """
    from victim_support.audit import verify_log

    now = utcnow()
    anchor = None
    for obs in observations.latest(engine):
        if obs.kind == "audit_anchor" and obs.detail:
            seq, _, digest = obs.detail.partition(":")
            anchor = (int(seq), digest)
    try:
        report = verify_log(engine, anchor)
    except Exception as exc:
        return Observation("audit_chain", "audit_log", False, now, detail=_reason(exc))
    if report.ok:
        head = f"{report.head_seq}:{report.head_hash}"
        observations.record(engine, [Observation("audit_anchor", "audit_log", True, now, detail=head)])
        return Observation("audit_chain", "audit_log", True, now, value=float(report.entries))
    return Observation("audit_chain", "audit_log", False, now, detail=f"entry {report.first_bad_seq}: {report.problem}")


def probe_repository(
    config: Consortium, site_id: str, config_dir: Path | None, *, last_size_at: datetime | None = None
) -> list[Observation]:
    """Reachability (the fixed-name ``config`` object), total size, and free space if local."""
    now = utcnow()
    try:
        # SFTP sites are reached with their pinned host keys, like every other job reaches them.
        backend = open_site(config, site_id, config_dir=config_dir)
    except Exception as exc:
        return [Observation("repository", site_id, False, now, site=site_id, detail=_reason(exc))]
    found: list[Observation] = []
    try:
        try:
            backend.stat("config")
        except Exception as exc:
            return [Observation("repository", site_id, False, now, site=site_id, detail=_reason(exc))]
        found.append(Observation("repository", site_id, True, now, site=site_id))
        local = backend if isinstance(backend, LocalBackend) else None
        if local is not None or last_size_at is None or now - last_size_at >= REMOTE_SIZE_EVERY:
            try:
                size = sum(info.size for info in backend.list(""))
                found.append(Observation("repository_size", site_id, True, now, site=site_id, value=float(size)))
            except Exception:
                pass  # a size is optional; reachability above already says what is wrong
        if local is not None:
            usage = shutil.disk_usage(local.root)
            found.append(
                Observation(
                    "filesystem", site_id, True, now, site=site_id, value=float(usage.free), value2=float(usage.total)
                )
            )
    finally:
        backend.close()
    return found


def probe_source(system_id: str, system: System, config_dir: Path | None, timeout: float) -> Observation | None:
    """Can the system's source be opened for reading? ``None`` for ``command`` sources,
    which cannot be probed without running the backup command itself."""
    now = utcnow()
    source = system.source
    base = Observation("source", system_id, None, now, tenant=system.tenant, probe=source.kind)
    try:
        if source.kind in ("postgres", "postgres-wal"):
            import psycopg

            with psycopg.connect(source.value(), connect_timeout=max(1, int(timeout))) as conn:
                conn.execute("SELECT 1")
        elif source.kind == "sqlite":
            path = resolve_path(source.value(), config_dir)
            if not os.path.isfile(path):
                return replace(base, ok=False, detail="database file does not exist")
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout) as conn:
                conn.execute("PRAGMA schema_version").fetchone()
        elif source.kind == "path":
            path = resolve_path(source.value(), config_dir)
            if not (os.path.isdir(path) and os.access(path, os.R_OK | os.X_OK)):
                return replace(base, ok=False, detail="directory missing or not readable")
        else:
            return None
    except Exception as exc:
        detail = _first_line(exc)
        if source.dsn:
            detail = detail.replace(source.dsn, redact_dsn(source.dsn))
        return replace(base, ok=False, detail=detail)
    return replace(base, ok=True)


def probe_postgres_server(
    members: list[tuple[str, System]], config_dir: Path | None, timeout: float
) -> list[Observation | None]:
    """The postgres sources of one server (same host, port, user, options) with one connection:
    each system's database must exist and accept this user's connections. The health job's
    cost then follows the servers, not the systems (a prefecture: 1,452 systems on a few dozen
    database servers). If that one connection fails, each system is probed on its own, so a
    missing database of one system never marks the others down."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    names = [str(conninfo_to_dict(system.source.value()).get("dbname") or "") for _sid, system in members]
    try:
        with psycopg.connect(members[0][1].source.value(), connect_timeout=max(1, int(timeout))) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s) AND datallowconn"
                " AND has_database_privilege(datname, 'CONNECT')",
                (names,),
            ).fetchall()
    except Exception:
        return [probe_source(sid, system, config_dir, timeout) for sid, system in members]
    allowed = {row[0] for row in rows}
    found: list[Observation | None] = []
    for (sid, system), name in zip(members, names, strict=True):
        base = Observation("source", sid, None, utcnow(), tenant=system.tenant, probe="postgres")
        ok = name in allowed
        found.append(
            replace(base, ok=ok, detail=None if ok else f'database "{name}" does not exist or refuses this user')
        )
    return found


def _server_key(system: System) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(system.source.value())
    except Exception:
        return f"unparsed:{id(system)}"  # probed on its own, which reports why
    params.pop("dbname", None)
    return repr(sorted(params.items()))


def probe_all(
    config: Consortium,
    config_dir: Path | None,
    *,
    timeout: float = 3.0,
    last_size_at: dict[str, datetime] | None = None,
) -> list[Observation]:
    """Every probe, concurrently, so a few unreachable hosts cost one timeout, not several."""
    sizes = last_size_at or {}
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="bcp-probe") as pool:
        hosts = [pool.submit(probe_host, hid, config, config_dir, timeout) for hid in config.hosts]
        sites = [
            pool.submit(probe_repository, config, sid, config_dir, last_size_at=sizes.get(sid)) for sid in config.sites
        ]
        servers: dict[str, list[tuple[str, System]]] = {}
        for sid, system in config.systems.items():
            if system.source.kind == "postgres":
                servers.setdefault(_server_key(system), []).append((sid, system))
        sources = [
            pool.submit(probe_source, sid, system, config_dir, timeout)
            for sid, system in config.systems.items()
            if system.source.kind != "postgres"
        ]
        grouped = [pool.submit(probe_postgres_server, members, config_dir, timeout) for members in servers.values()]
        found = [f.result() for f in hosts]
        for future in sites:
            found.extend(future.result())
        found.extend(obs for obs in (f.result() for f in sources) if obs is not None)
        for server in grouped:
            found.extend(obs for obs in server.result() if obs is not None)
    return found
