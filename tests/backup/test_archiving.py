"""The postgresql.conf lines of a ``postgres-wal`` source, read back as PostgreSQL reads them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.archiving import archive_settings


def _read(conf: str) -> dict[str, str]:
    """postgresql.conf's ``name = 'value'`` lines, a doubled quote inside a value being one quote."""
    found = {}
    for line in conf.splitlines():
        name, _, value = line.partition(" = ")
        if value.startswith("'"):
            assert value.endswith("'") and "'" not in value[1:-1].replace("''", ""), line
            value = value[1:-1].replace("''", "'")
        found[name] = value
    return found


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60))
def test_every_command_comes_back_as_written(command: str) -> None:
    assert _read(archive_settings(command)) == {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"{command} push %p",
    }
