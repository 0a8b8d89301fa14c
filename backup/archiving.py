"""What ``postgresql.conf`` needs for a ``postgres-wal`` source: archive every WAL segment
through ``bcpctl wal push`` (docs/deployment.md, "Continuous protection")."""

from __future__ import annotations


def archive_settings(wal_command: str) -> str:
    """The ``postgresql.conf`` lines that archive each segment with ``<wal_command> push %p``.

    They go into the file, not onto ``pg_ctl``'s command line: the command has spaces. A quote in
    the command is doubled, as PostgreSQL's configuration syntax wants.
    """
    command = f"{wal_command} push %p".replace("'", "''")
    return f"wal_level = replica\narchive_mode = on\narchive_command = '{command}'\n"
