"""One table of a PostgreSQL snapshot as SQL (``bcpctl dump SNAPSHOT --table SCHEMA.TABLE``).

The snapshot holds ``pg_dump --format=custom`` output; ``pg_restore --table`` reads it from a
pipe and writes that table's definition and rows as SQL, without a database. The stream is
fed blob by blob and its SHA-256 is checked at its end (:func:`backup.browse.dump_file`): a
stream that differs from the record ends in :class:`VerificationFailed` after the SQL.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator

from backup.browse import dump_file, file_entry
from backup.errors import RepositoryError
from backup.repository import Repository
from backup.snapshot import Snapshot
from backup.sources import pipe_reader, piped, postgres_tool
from dc.errors import N_, UsageError


def table_sql(repo: Repository, snapshot: Snapshot, table: str) -> Iterator[bytes]:
    """The SQL of ``table`` (``schema.table`` as ``snapshots`` lists it) from the snapshot's dump."""
    if snapshot.source_kind != "postgres":
        raise UsageError(
            N_("--table reads PostgreSQL snapshots; {short_id} is a {source_kind} backup"),
            short_id=snapshot.short_id,
            source_kind=snapshot.source_kind,
        )
    tables = snapshot.verify.get("tables") or {}
    if table not in tables:
        known = ", ".join(sorted(tables)[:10]) or "none recorded"
        raise UsageError(
            N_("snapshot {short_id} records no table {table!r} (tables: {known})"),
            short_id=snapshot.short_id,
            table=table,
            known=known,
        )
    schema, _, name = table.rpartition(".")
    entry = file_entry(repo, snapshot, None)
    argv = [postgres_tool("pg_restore"), "--no-owner", "--no-privileges", "-t", name, "-f", "-"]
    proc = subprocess.Popen(
        [*argv, *(["-n", schema] if schema else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdin, stdout, stderr = piped(proc.stdin), pipe_reader(proc), piped(proc.stderr)
    failure: list[BaseException] = []
    messages: list[str] = []

    def feed() -> None:
        try:
            for data in dump_file(repo, snapshot, entry):
                stdin.write(data)
        except BrokenPipeError:
            pass  # pg_restore stopped early; its exit status says why
        except BaseException as exc:
            failure.append(exc)
        finally:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()

    feeder = threading.Thread(target=feed, name="bcp-table-dump", daemon=True)
    errors = threading.Thread(
        target=lambda: messages.extend(stderr.read().decode(errors="replace").splitlines()), daemon=True
    )
    feeder.start()
    errors.start()
    try:
        while data := stdout.read1(1 << 20):
            yield data
    finally:
        stdout.close()
        code = proc.wait()
        feeder.join()
        errors.join(timeout=5)
    if failure:
        raise failure[0]
    if code != 0:
        detail = next((line for line in messages if "error" in line.lower()), messages[-1] if messages else "")
        raise RepositoryError(
            N_("pg_restore could not read table {table} from snapshot {short_id}: {detail}"),
            table=table,
            short_id=snapshot.short_id,
            detail=detail,
        )
