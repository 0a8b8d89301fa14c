"""Drill sandboxes at the offsite site: scratch databases and directories, one set per tenant.

Every name carries the drill's token (``bcpdrill_<token>_<system>``), so a sandbox can never
collide with production or with another drill, and cleanup can refuse to touch anything
that does not look like one. Each resource is recorded in the control database *before* it
is created (:func:`failover.resources.intend_resource`).

Tenant separation is built so it can be checked, not assumed: each tenant gets its own
PostgreSQL login role with a random password that lives only in this process; a sandbox
database revokes ``CONNECT`` from ``PUBLIC`` and grants it to its tenant's role alone; a
``probe`` role with no grants stands in for "anyone else". Directories live under
``<drill_dir>/bcpdrill-<token>/<tenant>/<system>`` with mode 0700 per tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from backup.sources import redact_dsn
from dc.config import Site
from dc.errors import N_
from failover.errors import RunFailed
from failover.resources import intend_resource, set_resource_state

if TYPE_CHECKING:
    from psycopg.sql import Composed

PG_PREFIX = "bcpdrill_"
DIR_PREFIX = "bcpdrill-"
#: the login that stands for "anyone who is not this tenant" in isolation checks.
PROBE = "_probe"


def pg_name(token: str, suffix: str) -> str:
    """A PostgreSQL identifier (≤ 63 bytes) unique to the drill; long names end in a short hash."""
    slug = re.sub(r"[^a-z0-9_]", "_", suffix.lower())
    name = f"{PG_PREFIX}{token}_{slug}"
    if len(name) > 63:
        name = name[:54] + "_" + hashlib.sha256(suffix.encode()).hexdigest()[:8]
    return name


def with_database(dsn: str, database: str) -> str:
    """The same server and user as ``dsn``, another database (libpq key=value form)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = database
    return make_conninfo("", **params)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The ``SCRAM-SHA-256$…`` string PostgreSQL stores for ``password`` (RFC 5802, RFC 7677).

    ``password`` is ASCII (``secrets.token_urlsafe``), so SASLprep leaves it unchanged.
    """
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


@dataclass(frozen=True)
class Login:
    """A tenant's (or the probe's) drill credentials; the password exists only in memory."""

    role: str
    tenant: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Target:
    """Where one system is restored, and who may and may not see it."""

    #: shown in reports: a database name or a directory; never a secret.
    description: str
    #: the database pg_restore writes into (admin credentials, no password in the string).
    dsn: str | None = None
    path: Path | None = None
    #: the tenant's own login (smoke and positive checks run with it); None for production targets.
    login: Login | None = None
    #: logins that must be refused by this target: the other tenants' and the probe's.
    strangers: tuple[Login, ...] = ()


class Sandboxes:
    """Everything one drill creates at the offsite site, created on demand and recorded first."""

    def __init__(self, state: Engine, run_id: str, token: str, site_name: str, site: Site) -> None:
        self.state = state
        self.run_id = run_id
        self.token = token
        self.site_name = site_name
        self.site = site
        self.logins: dict[str, Login] = {}
        self._root: Path | None = None
        self._lock = threading.Lock()

    # -- PostgreSQL --------------------------------------------------------------------------

    def _admin(self) -> str:
        if not self.site.drill_dsn:
            raise RunFailed(
                N_("site '{site_name}' has no drill_dsn: PostgreSQL systems cannot be drilled there"),
                site_name=self.site_name,
            )
        return self.site.drill_dsn

    def _execute(self, statements: list[Composed], database: str | None = None) -> None:
        import psycopg

        dsn = self._admin() if database is None else with_database(self._admin(), database)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=15) as conn:
            for statement in statements:
                conn.execute(statement)

    def prepare_logins(self, tenants: list[str]) -> None:
        """One login role per tenant plus the probe, before any restore (their ids precede the databases')."""
        from psycopg import sql

        # "_probe" cannot clash with a tenant id (ids start with a letter or digit).
        for tenant in [*tenants, PROBE]:
            role = pg_name(self.token, tenant)
            password = secrets.token_urlsafe(24)
            rid = intend_resource(self.state, self.run_id, "pg_role", role, redact_dsn(self._admin()))
            # Only a SCRAM verifier reaches the server, so no statement log can ever hold the password.
            self._execute(
                [
                    sql.SQL("CREATE ROLE {} LOGIN NOINHERIT PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(scram_verifier(password))
                    )
                ]
            )
            set_resource_state(self.state, rid, "created")
            self.logins[tenant] = Login(role, tenant, password)

    def database(self, system: str, tenant: str) -> Target:
        from psycopg import sql

        if tenant not in self.logins:
            raise RunFailed(N_("no drill login prepared for tenant '{tenant}'"), tenant=tenant)
        name = pg_name(self.token, system)
        login = self.logins[tenant]
        rid = intend_resource(self.state, self.run_id, "pg_database", name, redact_dsn(self._admin()))
        db = sql.Identifier(name)
        self._execute(
            [
                sql.SQL("CREATE DATABASE {}").format(db),
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(login.role)),
            ]
        )
        set_resource_state(self.state, rid, "created")
        strangers = tuple(other for key, other in sorted(self.logins.items()) if key != tenant)
        return Target(name, with_database(self._admin(), name), None, login, strangers)

    def grant_read(self, target: Target) -> None:
        """After pg_restore (run as the admin): let the tenant's role read what was restored."""
        import psycopg
        from psycopg import sql

        assert target.dsn is not None and target.login is not None
        with psycopg.connect(target.dsn, autocommit=True, connect_timeout=15) as conn:
            schemas = [
                r[0]
                for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%'"
                )
            ]
            role = sql.Identifier(target.login.role)
            for schema in schemas:
                ident = sql.Identifier(schema)
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, role))
                conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(ident, role))

    # -- directories -------------------------------------------------------------------------

    def _drill_root(self) -> Path:
        with self._lock:
            if self._root is None:
                if not self.site.drill_dir:
                    raise RunFailed(
                        N_("site '{site_name}' has no drill_dir: file and SQLite systems cannot be drilled there"),
                        site_name=self.site_name,
                    )
                base = Path(self.site.drill_dir)
                root = base / f"{DIR_PREFIX}{self.token}"
                rid = intend_resource(self.state, self.run_id, "directory", str(root), str(base))
                base.mkdir(parents=True, exist_ok=True)
                root.mkdir(mode=0o700)
                set_resource_state(self.state, rid, "created")
                self._root = root
            return self._root

    def directory(self, system: str, tenant: str) -> Target:
        root = self._drill_root()
        tenant_dir = root / tenant
        with self._lock:
            tenant_dir.mkdir(mode=0o700, exist_ok=True)
        path = tenant_dir / system
        path.mkdir(mode=0o700)
        return Target(str(path), None, path, None, ())

    @property
    def root(self) -> Path | None:
        return self._root
