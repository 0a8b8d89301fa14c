"""The rows of one table that the lost transactions wrote, compared by primary key between the
cluster the failover recovered and the one continued through the surviving WAL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from backup.waldump import WalStretch
from dc.sourcespec import Reentry, never_listed

if TYPE_CHECKING:
    import psycopg

#: 操作 as the worklist says it
INSERTED, UPDATED, DELETED = "追加", "変更", "削除"


@dataclass
class LostRow:
    business: str
    #: the town's name (from the town column, or the system's tenant)
    town: str
    table: str
    operation: str
    #: the transaction and its commit time (ISO 8601); none for a delete whose record was not found
    xid: int | None
    committed_at: str | None
    fields: dict[str, str] = field(default_factory=dict)
    #: the town's tenant id, whose report lists the row ("": a town column value naming no tenant)
    tenant: str = ""


def listed_fields(row: dict[str, Any], wanted: Sequence[str]) -> dict[str, str]:
    """The row's fields a worklist may show: never 個人番号 or 住民票コード, whatever is asked."""
    return {k: "" if row.get(k) is None else str(row[k]) for k in wanted if not never_listed(k) and k in row}


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def _primary_key(conn: psycopg.Connection[Any], table: sql.Composable) -> list[str]:
    rows = conn.execute(
        sql.SQL(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey::int2[]) WHERE i.indrelid = {}::regclass AND i.indisprimary"
            " ORDER BY array_position(i.indkey::int2[], a.attnum)"
        ).format(sql.Literal(table.as_string(conn)))
    ).fetchall()
    return [str(r[0]) for r in rows]


def table_rows(
    a: psycopg.Connection[Any],
    b: psycopg.Connection[Any],
    table: str,
    how: Reentry,
    stretch: WalStretch,
    towns: dict[str, tuple[str, str]],
) -> tuple[list[LostRow], list[str]]:
    """The lost rows of ``table`` (``a``: as the failover recovered it, ``b``: with the survivors)
    and the problems that kept any from the list; a table the database refuses to read (no
    such table, no privilege) is one problem, never the end of the whole list."""
    import psycopg

    try:
        return _table_rows(a, b, table, how, stretch, towns)
    except psycopg.Error as exc:
        return [], [f"{table}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"]


def _table_rows(
    a: psycopg.Connection[Any],
    b: psycopg.Connection[Any],
    table: str,
    how: Reentry,
    stretch: WalStretch,
    towns: dict[str, tuple[str, str]],
) -> tuple[list[LostRow], list[str]]:
    """The lost rows of ``table`` (``a``: as the failover recovered it, ``b``: with the survivors)
    and the problems that kept any from the list."""
    schema, name = _split(table)
    ident, table = sql.Identifier(schema, name), f"{schema}.{name}"
    key = _primary_key(b, ident)
    filenode = a.execute(
        sql.SQL("SELECT pg_relation_filenode({}::regclass)").format(sql.Literal(ident.as_string(a)))
    ).fetchone()
    if not key or filenode is None:
        return [], [f"{table} has no primary key: its lost rows cannot be told apart"]
    columns = {
        str(r[0])
        for r in b.execute(
            sql.SQL(
                "SELECT attname FROM pg_attribute WHERE attrelid = {}::regclass AND attnum > 0 AND NOT attisdropped"
            ).format(sql.Literal(ident.as_string(b)))
        )
    }
    problems = [
        f"{table} has no column {c}: the worklist leaves it out"
        for c in (how.town, *how.fields)
        if c and c not in columns
    ]
    by_xid = {}
    for tx in stretch.committed:
        for x in (tx.xid, *tx.subxids):
            by_xid[x] = tx
    wanted = how.fields or tuple(key)
    key_expr = sql.SQL("jsonb_build_array({})").format(sql.SQL(", ").join(sql.Identifier(k) for k in key))
    keys_a = {str(r[0]) for r in a.execute(sql.SQL("SELECT {}::text FROM {}").format(key_expr, ident))}
    keys_b = {str(r[0]) for r in b.execute(sql.SQL("SELECT {}::text FROM {}").format(key_expr, ident))}

    def town(row: dict[str, Any]) -> tuple[str, str]:
        value = "" if how.town is None else str(row.get(how.town) or "")
        return towns.get(value, ("", value))

    rows = []
    written = b.execute(
        sql.SQL("SELECT xmin::text, {}::text, to_jsonb(t) FROM {} t WHERE xmin::text::bigint = ANY(%s)").format(
            key_expr, ident
        ),
        (list(by_xid),),
    ).fetchall()
    for xmin, row_key, row in written:
        tx = by_xid[int(xmin)]
        operation = UPDATED if row_key in keys_a else INSERTED
        tenant, name = town(row)
        fields = listed_fields(row, wanted)
        rows.append(LostRow(how.business, name, table, operation, tx.xid, tx.time.isoformat(), fields, tenant))
    gone = sorted(keys_a - keys_b)
    if gone:
        deleted = a.execute(
            sql.SQL("SELECT ctid::text, to_jsonb(t) FROM {} t WHERE {}::text = ANY(%s)").format(ident, key_expr),
            (gone,),
        ).fetchall()
        for ctid, row in deleted:
            block, line = (int(n) for n in ctid.strip("()").split(","))
            deleter = stretch.deletes.get((int(filenode[0]), block, line))
            found = by_xid.get(deleter) if deleter is not None else None
            tenant, name = town(row)
            rows.append(
                LostRow(
                    how.business,
                    name,
                    table,
                    DELETED,
                    found.xid if found else None,
                    found.time.isoformat() if found else None,
                    listed_fields(row, wanted),
                    tenant,
                )
            )
    return rows, problems
