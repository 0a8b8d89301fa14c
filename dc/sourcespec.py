"""What a system's backup reads (``systems.<id>.source``) and how rows lost in a failover are
listed for re-entry by hand (``systems.<id>.reentry``), with the columns no worklist may show.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from dc.configtypes import Command, Dsn


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Model):
    """What a system's backup reads: ``path``, ``sqlite``, ``postgres``, ``postgres-wal`` or ``command``.

    ``postgres-wal``: base backups with ``pg_basebackup`` from ``dsn`` (a replication-capable
    user), WAL pushed by the server itself (``archive_command = 'bcpctl wal push %p --system …'``).
    """

    kind: Literal["path", "sqlite", "postgres", "postgres-wal", "command"]
    path: str | None = None
    dsn: Dsn | None = None
    command: str | None = None
    exclude: tuple[str, ...] = ()
    #: postgres-wal: how the server runs ``bcpctl wal`` (its ``restore_command`` in a restored
    #: cluster is this, then ``get %f %p --system … --config …``); default ``bcpctl wal``
    wal_command: Command | None = None
    #: postgres-wal: the account a restored cluster runs as (PostgreSQL refuses root)
    run_as: str | None = None
    #: postgres-wal: where the primary's WAL may survive a disaster (a synchronous standby's
    #: archive, a copy of ``pg_wal``): directories or ``sftp://``/``s3://`` URLs; read, never
    #: trusted, by ``failover lost``
    surviving_wal: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Source:
        needed = {"path": "path", "sqlite": "path", "postgres": "dsn", "postgres-wal": "dsn", "command": "command"}[
            self.kind
        ]
        if getattr(self, needed) in (None, ""):
            raise ValueError(f"a {self.kind} source needs '{needed}'")
        return self

    def value(self) -> str:
        """What this kind of source reads: its ``path``, ``dsn`` or ``command`` (set, as validated)."""
        value = {
            "path": self.path,
            "sqlite": self.path,
            "postgres": self.dsn,
            "postgres-wal": self.dsn,
            "command": self.command,
        }[self.kind]
        if not value:
            raise ValueError(f"a {self.kind} source without its value")
        return str(value)

    def spec(self) -> str:
        """The ``KIND:SPEC`` form that ``bcpctl backup run --source`` takes."""
        return f"{self.kind}:{self.value()}"


#: columns a re-entry worklist never shows, whatever the configuration says: 個人番号
#: (番号法19条 is a closed list) and 住民票コード (住基法30条の36/37)
#: — folded as :func:`never_listed` folds a column name (a substring of it is enough)
_NEVER_LISTED_STEMS = ("kojinbango", "juminhyocode", "個人番号", "住民票コード", "mynumber", "マイナンバー")


def never_listed(column: str) -> bool:
    """Whether ``column`` names 個人番号 or 住民票コード however it is spelt: case, full width
    (NFKC), separators and a prefix or suffix do not make it another column."""
    folded = "".join(c for c in unicodedata.normalize("NFKC", column).casefold() if c.isalnum())
    return any(stem in folded for stem in _NEVER_LISTED_STEMS)


class Reentry(_Model):
    """How one table's rows lost in a failover are listed for re-entry by hand."""

    #: the 業務 the worklist names, e.g. 住民基本台帳 異動 or 税 収納
    business: str
    #: the column holding the town (a tenant's lg_code or id); none: the system's own tenant
    town: str | None = None
    #: the columns a clerk needs to find the paper slip again (default: the primary key)
    fields: tuple[str, ...] = ()

    @field_validator("fields")
    @classmethod
    def _no_identifiers(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        if listed := sorted(f for f in fields if never_listed(f)):
            raise ValueError(f"{', '.join(listed)} may never appear on a worklist")
        return fields

    @field_validator("town")
    @classmethod
    def _town_no_identifier(cls, town: str | None) -> str | None:
        # the town column's value is printed on every line of the worklist
        if town is not None and never_listed(town):
            raise ValueError(f"{town} may never appear on a worklist")
        return town
