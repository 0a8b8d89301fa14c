"""Timestamps are one type everywhere; the scheduler lease and terms record bcpctl's version.

The web surface's tables and the export requests stored their times as ISO 8601 text and the
scheduler lease as Unix seconds; each becomes a timezone-aware DateTime like every other
table's, with its stored values parsed and written back as the same instants (a value that
does not parse stops the upgrade, naming the row, before anything changed). A request's
``disaster_date`` becomes a DATE.

``audit_log.at`` stays text on purpose: it is part of what each entry's hash covers, so it
is kept byte for byte as it was hashed.

``version`` on ``scheduler_lease`` and ``scheduler_terms``: which bcpctl holds or held the
lease, so that ``bcpctl serve`` can refuse to upgrade the schema under a scheduler of
another version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op

from dc.errors import ProblemFound

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TEXT_TIME = sa.String(40)
TIME = sa.DateTime(timezone=True)


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite hands DATETIME back without an offset: what bcpctl stored there is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: datetime) -> str:
    return _utc(value).isoformat()


def _epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _seconds(value: datetime) -> float:
    return _utc(value).timestamp()


class Conversion(NamedTuple):
    """Columns of one table that change type, with how each stored value changes with them.

    (A NamedTuple: Alembic loads this file without registering it as a module, which a
    dataclass needs.)
    """

    table: str
    keys: tuple[str, ...]
    #: (column, nullable)
    columns: tuple[tuple[str, bool], ...]
    old: sa.types.TypeEngine[Any]
    new: sa.types.TypeEngine[Any]
    forward: Callable[[Any], Any]
    backward: Callable[[Any], Any]
    #: PostgreSQL's USING for ALTER COLUMN ... TYPE, up and down (the rows are rewritten after)
    using: str
    using_back: str


def _texts(table: str, keys: tuple[str, ...], *columns: tuple[str, bool]) -> Conversion:
    return Conversion(table, keys, columns, TEXT_TIME, TIME, _instant, _text, "{c}::timestamptz", "{c}::text")


CONVERSIONS = (
    _texts(
        "web_deliveries",
        ("request_id",),
        ("built_at", False),
        ("expires_at", False),
        ("last_download_at", True),
        ("deleted_at", True),
    ),
    _texts("web_accounts", ("name",), ("created_at", False)),
    _texts("web_jobs", ("id",), ("requested_at", False), ("finished_at", True)),
    _texts("web_partner_tokens", ("id",), ("issued_at", False), ("expires_at", False), ("revoked_at", True)),
    _texts("web_request_nonces", ("partner", "nonce"), ("seen_at", False)),
    _texts("web_sessions", ("digest",), ("created_at", False), ("expires_at", False)),
    _texts("export_requests", ("id",), ("created_at", False), ("valid_until", False)),
    _texts("export_decisions", ("id",), ("at", False)),
    Conversion(
        "export_requests",
        ("id",),
        (("disaster_date", False),),
        sa.String(10),
        sa.Date(),
        date.fromisoformat,
        date.isoformat,
        "{c}::date",
        "{c}::text",
    ),
    Conversion(
        "scheduler_lease",
        ("name",),
        (("acquired_at", False), ("expires_at", False)),
        sa.Float(),
        TIME,
        _epoch,
        _seconds,
        "to_timestamp({c})",
        "extract(epoch from {c})",
    ),
)

VERSIONED = ("scheduler_lease", "scheduler_terms")


def upgrade() -> None:
    for conversion in CONVERSIONS:
        _convert(conversion, up=True)
    for table in VERSIONED:
        op.add_column(table, sa.Column("version", sa.String(64)))


def downgrade() -> None:
    for table in VERSIONED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
    for conversion in reversed(CONVERSIONS):
        _convert(conversion, up=False)


def _convert(c: Conversion, *, up: bool) -> None:
    """Read every row's values, change the columns' type, write the converted values back.

    SQLite changes a type by copying the table, casting on the way (text to a number: a
    time would come out as its year), so the values are converted here and rewritten after.
    """
    bind = op.get_bind()
    old, new = (c.old, c.new) if up else (c.new, c.old)
    convert = c.forward if up else c.backward
    names = [name for name, _ in c.columns]
    before = sa.table(c.table, *(sa.column(k) for k in c.keys), *(sa.column(n, old) for n in names))
    rows = bind.execute(sa.select(*before.c)).all()
    converted = [(row[: len(c.keys)], {n: _value(c, row, n, v, convert) for n, v in _values(c, row)}) for row in rows]
    with op.batch_alter_table(c.table) as batch:
        for name, nullable in c.columns:
            batch.alter_column(
                name,
                type_=new,
                existing_type=old,
                existing_nullable=nullable,
                postgresql_using=(c.using if up else c.using_back).format(c=name),
            )
    after = sa.table(c.table, *(sa.column(k) for k in c.keys), *(sa.column(n, new) for n in names))
    for key, values in converted:
        where = [after.c[k] == v for k, v in zip(c.keys, key, strict=True)]
        bind.execute(sa.update(after).where(*where).values(values))


def _values(c: Conversion, row: sa.Row[Any]) -> list[tuple[str, Any]]:
    return [(name, row[len(c.keys) + i]) for i, (name, _) in enumerate(c.columns)]


def _value(c: Conversion, row: sa.Row[Any], name: str, value: Any, convert: Callable[[Any], Any]) -> Any:
    if value is None:
        return None
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError, OSError):
        key = ", ".join(str(v) for v in row[: len(c.keys)])
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ProblemFound(
            f"{c.table}.{name} of row ({key}) holds {shown}, which is not a time bcpctl wrote: "
            "correct or delete that row, then run bcpctl db upgrade again (nothing was changed)"
        ) from None
