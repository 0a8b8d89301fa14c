"""pg_dump-style plain-text dumps: writing them, and finding a table's rows again to edit them.

The layout follows ``pg_dump --format=plain`` of PostgreSQL 15 (SET preamble, CREATE TABLE,
one ``COPY ... FROM stdin;`` block per table ending in ``\\.``, constraints last); history
tables dumped with ``--inserts`` appear as one ``INSERT`` statement per row, which is what
municipal vendors' nightly exports of audit tables often look like.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from bench.sqltables import Columns, context
from bench.systems import SYSTEMS, TableSpec

_PREAMBLE = """--
-- PostgreSQL database dump
--

-- Dumped from database version 15.8 (Debian 15.8-0+deb12u1)
-- Dumped by pg_dump version 15.8 (Debian 15.8-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

"""

_BATCH_ROWS = 40_000


def _create_table(table: TableSpec, owner: str) -> str:
    cols = ",\n".join(f"    {c.name} {c.sqltype}{' NOT NULL' if i == 0 else ''}" for i, c in enumerate(table.columns))
    return (
        f"--\n-- Name: {table.name}; Type: TABLE; Schema: public; Owner: {owner}\n--\n\n"
        f"CREATE TABLE public.{table.name} (\n{cols}\n);\n\n\n"
        f"ALTER TABLE public.{table.name} OWNER TO {owner};\n\n"
    )


def _data_header(table: TableSpec, owner: str) -> str:
    head = f"--\n-- Data for Name: {table.name}; Type: TABLE DATA; Schema: public; Owner: {owner}\n--\n\n"
    if table.inserts:
        return head
    names = ", ".join(c.name for c in table.columns)
    return head + f"COPY public.{table.name} ({names}) FROM stdin;\n"


def _data_footer(table: TableSpec) -> str:
    return "\n\n" if table.inserts else "\\.\n\n\n"


def _constraint(table: TableSpec, owner: str) -> str:
    key = table.columns[0].name
    return (
        f"--\n-- Name: {table.name} {table.name}_pkey; Type: CONSTRAINT; Schema: public; Owner: {owner}\n--\n\n"
        f"ALTER TABLE ONLY public.{table.name}\n    ADD CONSTRAINT {table.name}_pkey PRIMARY KEY ({key});\n\n\n"
    )


def _insert_prefix(table: TableSpec) -> str:
    return f"INSERT INTO public.{table.name} VALUES ("


def render_rows(table: TableSpec, cols: Columns) -> str:
    """Row lines (each ending in a newline) in the table's dump syntax."""
    if not cols or not cols[0]:
        return ""
    if not table.inserts:
        return "\n".join(map("\t".join, zip(*cols, strict=True))) + "\n"
    quoted = [
        col if c.numeric else ["NULL" if x == "\\N" else f"'{x}'" for x in col]
        for c, col in zip(table.columns, cols, strict=True)
    ]
    prefix = _insert_prefix(table)
    return "".join([prefix + ", ".join(r) + ");\n" for r in zip(*quoted, strict=True)])


def parse_row(table: TableSpec, line: bytes) -> list[str]:
    """The field values of one row line, as the generator produced them."""
    text = line.decode()
    if not table.inserts:
        return text.split("\t")
    fields = text[len(_insert_prefix(table)) : -2].split(", ")
    return ["\\N" if f == "NULL" else f.strip("'") for f in fields]


def dump_relpath(muni_slug: str, muni_code: str, system: str) -> str:
    return f"sql/{muni_code}_{muni_slug}/{system}.sql"


def _estimate_row_bytes(table: TableSpec, muni_slug: str, seed: int) -> float:
    # ids from the middle of a typical table: "1".."2000" would be shorter than the rows really written
    rng = random.Random(seed ^ 0x5EED)
    sample = render_rows(table, table.generate(context(muni_slug), rng, 50_000, 2_000, 100_000))
    return len(sample.encode()) / 2_000


def write_dump(path: Path, muni_slug: str, system: str, target_bytes: int, seed: int) -> int:
    """Write one system's dump of about ``target_bytes``; returns the bytes written."""
    _weight, tables = SYSTEMS[system]
    ctx = context(muni_slug)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("wb") as out:

        def emit(text: str) -> None:
            nonlocal written
            data = text.encode()
            out.write(data)
            written += len(data)

        emit(_PREAMBLE)
        for table in tables:
            emit(_create_table(table, system))
        for table in tables:
            emit(_data_header(table, system))
            total = max(1, round(target_bytes * table.share / _estimate_row_bytes(table, muni_slug, seed)))
            for first in range(1, total + 1, _BATCH_ROWS):
                n = min(_BATCH_ROWS, total + 1 - first)
                emit(render_rows(table, table.generate(ctx, rng, first, n, total)))
            emit(_data_footer(table))
        for table in tables:
            emit(_constraint(table, system))
        emit("--\n-- PostgreSQL database dump complete\n--\n\n")
    return written


@dataclass(frozen=True)
class Section:
    """The byte range ``[start, end)`` of one table's row lines inside a dump."""

    table: TableSpec
    start: int
    end: int


def find_sections(data: bytes, system: str) -> list[Section]:
    sections = []
    for table in SYSTEMS[system][1]:
        if table.inserts:
            start = data.find(b"\n" + _insert_prefix(table).encode()) + 1
            end = data.find(b"\n\n", start) + 1
        else:
            header = data.find(f"COPY public.{table.name} (".encode())
            start = data.find(b"\n", header) + 1
            end = data.find(b"\n\\.\n", start - 1) + 1
        if start <= 0 or end <= 0 or end < start:
            raise ValueError(f"table {table.name} not found in the {system} dump")
        sections.append(Section(table, start, end))
    return sections
