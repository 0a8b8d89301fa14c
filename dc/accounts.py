"""Operator accounts with roles, in the control database; every change audited.

Roles: ``operator`` (runs the data center: status, drills, partner tokens), ``approver``
(decides export requests — the account name must also be a configured approver of the
tenant, :mod:`victim_support.approval`), ``auditor`` (reads the audit log). An account may
hold several. Accounts behind an authenticating reverse proxy may have no password at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Engine, Row, String, Table, Text, insert, select, update

from dc.audit import append, audited
from dc.errors import N_, UsageError
from dc.passwords import DEFAULT_COST, Cost, check_strength, hash_password, verify_password
from dc.state import UtcDateTime, metadata

OPERATOR = "operator"
APPROVER = "approver"
AUDITOR = "auditor"
ROLES = (OPERATOR, APPROVER, AUDITOR)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

web_accounts = Table(
    "web_accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("roles", Text, nullable=False),
    Column("password_hash", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)


@dataclass(frozen=True)
class Account:
    name: str
    roles: tuple[str, ...]
    has_password: bool
    created_at: datetime
    disabled: bool


def _account(row: Row[Any]) -> Account:
    r = row._mapping
    return Account(
        r["name"],
        tuple(json.loads(r["roles"])),
        r["password_hash"] is not None,
        r["created_at"],
        r["disabled"],
    )


def _check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    if not roles:
        raise UsageError(N_("give at least one role ({ROLES})"), ROLES=", ".join(ROLES))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise UsageError(N_("unknown role '{unknown}' (roles: {ROLES})"), unknown=unknown[0], ROLES=", ".join(ROLES))
    return tuple(r for r in ROLES if r in roles)


def add_account(
    engine: Engine,
    name: str,
    roles: tuple[str, ...],
    password: str | None,
    *,
    actor: str,
    now: datetime,
    cost: Cost = DEFAULT_COST,
) -> Account:
    """Create an account; ``password=None`` is for accounts that only log in through the proxy."""
    import re

    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageError(N_("invalid account name '{name}' (letters, digits, '.', '_', '-'; at most 64)"), name=name)
    roles = _check_roles(roles)
    if password is not None:
        check_strength(password)
    digest = hash_password(password, cost) if password is not None else None

    def work(conn: Connection) -> Account:
        if conn.execute(select(web_accounts.c.name).where(web_accounts.c.name == name)).first():
            raise UsageError(N_("account '{name}' already exists"), name=name)
        conn.execute(
            insert(web_accounts).values(
                name=name, roles=json.dumps(list(roles)), password_hash=digest, created_at=now, disabled=False
            )
        )
        append(
            conn,
            actor=actor,
            action="account.created",
            subject=name,
            details={"roles": list(roles), "password": digest is not None},
        )
        return Account(name, roles, digest is not None, now.astimezone(UTC), False)

    return audited(engine, work)


def disable_account(engine: Engine, name: str, *, actor: str) -> None:

    def work(conn: Connection) -> None:
        done = conn.execute(update(web_accounts).where(web_accounts.c.name == name).values(disabled=True))
        if done.rowcount != 1:
            raise UsageError(N_("no account '{name}'"), name=name)
        append(conn, actor=actor, action="account.disabled", subject=name, details={})

    audited(engine, work)


def list_accounts(engine: Engine) -> list[Account]:
    with engine.connect() as conn:
        return [_account(row) for row in conn.execute(select(web_accounts).order_by(web_accounts.c.name))]


def find_account(engine: Engine, name: str) -> Account | None:
    with engine.connect() as conn:
        row = conn.execute(select(web_accounts).where(web_accounts.c.name == name)).first()
    return _account(row) if row else None


def authenticate(engine: Engine, name: str, password: str) -> Account | None:
    """The enabled account whose password matches, else ``None`` (same cost either way)."""
    with engine.connect() as conn:
        row = conn.execute(select(web_accounts).where(web_accounts.c.name == name)).first()
    encoded = row._mapping["password_hash"] if row is not None else None
    if not verify_password(password, encoded) or row is None:
        return None
    account = _account(row)
    return None if account.disabled else account
