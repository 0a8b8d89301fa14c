"""Business-level checks on a restored system: tenant separation and the configured smoke command.

Byte and row verification happens inside the restore itself (``backup.restorer`` and
``backup.dbrestore`` compare SHA-256 per file or stream and per-table row counts with what
the backup recorded). What remains is what SureBackup calls application checks:

* separation — the tenant's own login reads its sandbox; every other tenant's login and the
  no-grant probe are refused (``permission denied``; any other error proves nothing and
  fails the check); a directory sandbox is 0700 and holds only that tenant's systems;
* smoke — ``System.smoke`` runs last: SQL for database systems (as the tenant's login), or
  ``command:CMD`` run with ``BCP_TARGET``/``BCP_SYSTEM``/``BCP_TENANT`` in its environment. With
  ``drills.smoke_expect`` its first value must equal the expected text (e.g. a synthetic
  resident's 住所 read back intact).
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dc.errors import N_, Message, library_reason
from failover.results import Check
from failover.sandbox import Login, Target

if TYPE_CHECKING:
    import psycopg

SMOKE_TIMEOUT = 120


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect(target: Target, login: Login | None) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection to the restored database, as ``login`` when given (else as its DSN says)."""
    import psycopg

    if target.dsn is None:
        raise ValueError(f"{target.description} is not a PostgreSQL database")
    if login is None:
        return psycopg.connect(target.dsn, connect_timeout=15)
    return psycopg.connect(target.dsn, connect_timeout=15, user=login.role, password=login.password)


def pg_separation(target: Target) -> list[Check]:
    """The tenant's login reads its sandbox; every stranger is refused at CONNECT."""
    import psycopg

    checks = []
    if target.login is not None:
        try:
            with _connect(target, target.login) as conn:
                conn.execute("SELECT 1").fetchone()
            checks.append(Check("tenant reads own sandbox", True, Message(N_("login {role}"), role=target.login.role)))
        except psycopg.Error as exc:
            checks.append(Check("tenant reads own sandbox", False, library_reason(exc)))
    for stranger in target.strangers:
        checks.append(_refused(target, stranger))
    return checks


def _refused(target: Target, stranger: Login) -> Check:
    import psycopg

    who = "probe login" if stranger.tenant.startswith("_") else f"tenant {stranger.tenant}'s login"
    name = f"{who} refused"
    try:
        with _connect(target, stranger) as conn:
            conn.execute("SELECT 1")
    except psycopg.errors.InsufficientPrivilege:
        return Check(name, True, Message(N_("permission denied")))
    except psycopg.OperationalError as exc:
        if "permission denied" in str(exc):
            return Check(name, True, Message(N_("permission denied")))
        return Check(name, False, Message(N_("could not tell: {first_line}"), first_line=library_reason(exc)))
    return Check(
        name,
        False,
        Message(N_("{who} ({role}) opened {description}"), who=who, role=stranger.role, description=target.description),
    )


def dir_separation(tenant_dir: Path, expected: set[str]) -> Check:
    """A tenant's sandbox directory is private (0700) and holds only that tenant's systems."""
    st = os.lstat(tenant_dir)
    if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) & 0o077:
        return Check(
            "tenant directory private",
            False,
            Message(N_("{tenant_dir} is not a 0700 directory"), tenant_dir=tenant_dir),
        )
    present = {p.name for p in tenant_dir.iterdir()}
    foreign = present - expected
    if foreign:
        return Check(
            "tenant directory private",
            False,
            Message(N_("{tenant_dir} also holds {names}"), tenant_dir=tenant_dir, names=", ".join(sorted(foreign))),
        )
    return Check("tenant directory private", True, f"{tenant_dir} (0700)")


def run_smoke(
    smoke: str, target: Target, *, system: str, tenant: str, kind: str, sqlite_file: Path | None, expect: str | None
) -> Check:
    """Run the system's smoke command against its restored copy."""
    try:
        if smoke.startswith("command:"):
            value = _smoke_command(smoke.removeprefix("command:"), target, system, tenant)
        elif kind in ("postgres", "postgres-wal"):
            value = _smoke_pg(smoke, target)
        elif kind == "sqlite" and sqlite_file is not None:
            value = _smoke_sqlite(smoke, sqlite_file)
        else:
            return Check("smoke", False, Message(N_("a {kind} system needs a 'command:' smoke, not SQL"), kind=kind))
    except SmokeError as exc:
        return Check("smoke", False, str(exc))
    if expect is not None and value.strip() != expect.strip():
        return Check(
            "smoke",
            False,
            Message(
                N_("returned {value!r}, expected {expected!r}"), value=value.strip()[:80], expected=expect.strip()[:80]
            ),
        )
    return Check("smoke", True, value.strip()[:120])


class SmokeError(Exception):
    pass


def _smoke_pg(query: str, target: Target) -> str:
    import psycopg

    try:
        with _connect(target, target.login) as conn:
            conn.execute(f"SET statement_timeout = {SMOKE_TIMEOUT * 1000}")
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        raise SmokeError(_first_line(exc)) from None
    return "" if row is None else str(row[0])


def _smoke_sqlite(query: str, path: Path) -> str:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute(query).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SmokeError(_first_line(exc)) from None
    return "" if row is None else str(row[0])


def _smoke_command(command: str, target: Target, system: str, tenant: str) -> str:
    env = dict(os.environ, BCP_SYSTEM=system, BCP_TENANT=tenant, BCP_TARGET=str(target.path or target.dsn or ""))
    if target.login is not None:
        # libpq reads these; the password never appears on a command line.
        env.update(PGUSER=target.login.role, PGPASSWORD=target.login.password)
    try:
        done = subprocess.run(
            shlex.split(command),
            cwd=target.path if target.path else None,
            env=env,
            capture_output=True,
            text=True,
            timeout=SMOKE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SmokeError(_first_line(exc)) from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise SmokeError(f"exit {done.returncode}: {tail[-1] if tail else 'no output'}")
    return done.stdout
