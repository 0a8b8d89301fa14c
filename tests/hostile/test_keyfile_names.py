"""Hostile finding: ``key add --new-key-file PATH`` without ``--label`` labels the slot
``key file <name>``; a file name of more than 191 characters, or one holding a newline or an
escape sequence (legal in a POSIX name), made that default label invalid, and the command
failed with "a key slot label must be printable …" — an option nobody gave — after creating
and removing the file. Any name a file can have gives a usable key file; the label is shown
printable and bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup.keyfile import add_key_file, open_with_key_file
from backup.keyslots import MAX_LABEL_CHARS
from backup.opening import open_repository
from backup.slotscan import scan_slots
from storage.local import LocalBackend
from tests.conftest import PASSWORD


@pytest.mark.parametrize("name", ["k" * 250, "db\nhost.key", "db\x1b[31mhost.key", "db\thost"])
def test_any_file_name_gives_a_usable_key_file(repo_dir: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with open_repository(LocalBackend(repo_dir), PASSWORD, sync=False) as repo:
        slot = add_key_file(repo, path)
    with open_with_key_file(LocalBackend(repo_dir), path):
        pass
    (label,) = [s.label for s in scan_slots(LocalBackend(repo_dir))[0] if s.id == slot]
    assert label.isprintable() and len(label) <= MAX_LABEL_CHARS
