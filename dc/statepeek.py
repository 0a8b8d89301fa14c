"""A read-only look into a SQLite control database before SQLAlchemy is loaded.

A one-shot command whose first question to the control database is a single row (the
replication pin) need not wait for SQLAlchemy — a sizeable share of such a command's CPU
— before its network work can start; the full engine (:func:`dc.state.open_state`) loads
beside that work and writes the run's records afterwards. The look is taken only where it
answers exactly what the full open would: a plain ``sqlite:///PATH`` file that exists and
whose schema is at the migrations' head (the fast path of :func:`dc.schema.require_head`).
Anything else returns ``None`` and the caller opens the database the full way, which
refuses a missing, empty, older or newer database with its own message.
"""

from __future__ import annotations

import os
import re
import sqlite3
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

STATE_ENV = "BCPCTL_CONTROL_DB"
VERSION_TABLE = "alembic_version"


def default_state_url() -> str:
    """``$BCPCTL_CONTROL_DB``, else a SQLite file under ``$XDG_STATE_HOME/bcpctl``."""
    if url := os.environ.get(STATE_ENV):
        return url
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "bcpctl"
    return f"sqlite:///{base / 'control.db'}"


@cache
def revisions() -> tuple[str, ...]:
    """Every migration's revision, oldest first: the numbers of the files in ``dc/migrations/versions``."""
    folder = resources.files("dc.migrations") / "versions"
    found = sorted(m[1] for f in folder.iterdir() if (m := re.fullmatch(r"(\d{4})_\w+\.py", f.name)))
    return tuple(found)


def head() -> str:
    return revisions()[-1]


def open_at_head(url: str | None = None) -> sqlite3.Connection | None:
    """A read-only connection to the control database at ``url`` (default: :func:`default_state_url`)
    when it is a plain SQLite file at the head revision; ``None`` when the full open must decide."""
    path = _plain_sqlite_file(url or default_state_url())
    if path is None:
        return None
    try:
        # mode=ro: a look never creates the file, which the full open would refuse to do
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != head():
        conn.close()
        return None
    return conn


def _plain_sqlite_file(url: str) -> Path | None:
    """The file of ``sqlite:///PATH`` without query or options; ``None`` for any other form."""
    database = url.removeprefix("sqlite:///")
    if database == url or not database or database == ":memory:" or any(c in database for c in "?#%"):
        return None
    return Path(database)
