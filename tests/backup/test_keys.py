"""Key slots are independent: no object under keys/ can lock out another slot, passphrase or escrow.

Whoever can write keys/ (a disk error, a stray copy, an attacker with storage credentials)
plants one bad object; every damage kind, sorting before and after the real slots, must be
skipped and reported while the passphrase and the escrow shares still open the repository.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backup.crypto import MasterKey
from backup.errors import WrongPassword
from backup.escrow import open_repository_with_shares, split_key, write_share_sheets
from backup.keys import config_digest, unwrap, wrap
from backup.keyslots import add_passphrase_slot, remove_slot, slot_rows
from backup.manifest import signed_slots
from backup.opening import open_repository
from backup.repository import read_config
from backup.slotorder import MAX_UNWRAP_TRIES
from backup.slotscan import MAX_SLOT_OBJECTS, scan_slots
from dc.errors import UsageError
from storage.backend import ObjectInfo
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD


def _slot_doc(repo_dir: Path) -> dict:
    oldest = min((repo_dir / "keys").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(oldest.read_bytes())


def _variant(repo_dir: Path, name: str, **changes: object) -> bytes:
    """The repository's real slot with some fields changed, as it would sit under ``name``."""
    doc = _slot_doc(repo_dir)
    doc["id"] = name
    for field, value in changes.items():
        if field.startswith("kdf."):
            doc["kdf"][field[4:]] = value
        else:
            doc[field] = value
    return json.dumps(doc).encode()


#: damage kind -> the bytes planted under keys/<name> (given the repository dir and the name)
DAMAGE: dict[str, Callable[[Path, str], bytes]] = {
    "not-json": lambda d, n: b"\x00\xffgarbage",
    "empty": lambda d, n: b"",
    "json-array": lambda d, n: b"[1, 2, 3]",
    "truncated": lambda d, n: _variant(d, n)[:-40],
    "missing-wrapped": lambda d, n: json.dumps(
        {k: v for k, v in json.loads(_variant(d, n)).items() if k != "wrapped"}
    ).encode(),
    "kdf-4GiB": lambda d, n: _variant(d, n, **{"kdf.memory_kib": 4 * 1024 * 1024}),
    "kdf-10k-passes": lambda d, n: _variant(d, n, **{"kdf.iterations": 10_000}),
    "kdf-float": lambda d, n: _variant(d, n, **{"kdf.iterations": 1.5}),
    "kdf-string": lambda d, n: _variant(d, n, **{"kdf.lanes": "4"}),
    "kdf-scrypt": lambda d, n: _variant(d, n, **{"kdf.name": "scrypt"}),
    "wrapped-short": lambda d, n: _variant(d, n, wrapped="AAAA"),
    "wrapped-not-base64": lambda d, n: _variant(d, n, wrapped="!!!"),
    "salt-short": lambda d, n: _variant(d, n, **{"kdf.salt": "AAAA"}),
    "copied-under-other-name": lambda d, n: _variant(d, "0123456789abcdef"),
    "future-version": lambda d, n: _variant(d, n, version=2),
    "oversized": lambda d, n: b"{" + b" " * (2 * 1024 * 1024) + b"}",
}

#: names sorting before and after the real (random hex) slot ids; the old code tried slots in name order
NAMES = ["0000000000000000", "zzzz-stray", "sub/dir/object", "bad\nname", "\udcff-raw-byte"]


def _plant(repo_dir: Path, name: str, data: bytes) -> None:
    path = repo_dir / "keys" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize("name", NAMES, ids=["first", "last", "nested", "newline", "raw-byte"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_bad_object_in_keys_never_blocks_the_passphrase(repo_dir: Path, damage: str, name: str) -> None:
    _plant(repo_dir, name, DAMAGE[damage](repo_dir, name))
    backend = LocalBackend(repo_dir)
    config, raw = read_config(backend)
    started = time.monotonic()
    opened = unwrap(backend, PASSWORD.encode(), repo_id=config.id, config_digest=config_digest(raw))
    assert time.monotonic() - started < 5, "a planted slot made the unlock expensive"
    assert [p.name for p in opened.skipped] == [_shown(name)]
    slots, problems = scan_slots(backend)
    assert [s.id for s in slots] == [opened.slot_id] and [p.name for p in problems] == [_shown(name)]
    with open_repository(backend, PASSWORD) as repo:
        assert [p.name for p in repo.key_problems] == [_shown(name)]


def _shown(name: str) -> str:
    return {"bad\nname": "bad\\nname", "\udcff-raw-byte": "\\xff-raw-byte"}.get(name, name)


@pytest.mark.parametrize("damage", ["not-json", "kdf-4GiB", "wrapped-short", "oversized"])
def test_a_bad_object_in_keys_never_blocks_escrow_shares(repo_dir: Path, tmp_path: Path, damage: str) -> None:
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        split = split_key(repo, shares=3, threshold=2)
    (tmp_path / "shares").mkdir()
    files = write_share_sheets(split, tmp_path / "shares", str(repo_dir))
    for name in ("0000000000000000", "zzzz"):
        _plant(repo_dir, name, DAMAGE[damage](repo_dir, name))
    with open_repository_with_shares(LocalBackend(repo_dir), files[:2]) as repo:
        assert repo.slot_id == split.slot_id
        assert sorted(p.name for p in repo.key_problems) == ["0000000000000000", "zzzz"]


def test_a_vanished_slot_is_skipped(repo_dir: Path) -> None:
    """An object listed but gone when read (removed concurrently) is passed over and named."""
    _plant(repo_dir, "0000000000000000", _variant(repo_dir, "0000000000000000"))

    class Vanishing(LocalBackend):
        def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
            listed = list(super().list(prefix))
            (repo_dir / "keys" / "0000000000000000").unlink(missing_ok=True)
            return iter(listed)

    backend = Vanishing(repo_dir)
    config, raw = read_config(backend)
    opened = unwrap(backend, PASSWORD.encode(), repo_id=config.id, config_digest=config_digest(raw))
    assert [(p.name, p.problem) for p in opened.skipped] == [("0000000000000000", "vanished while it was being read")]


def test_a_wrong_passphrase_says_what_was_skipped(repo_dir: Path) -> None:
    _plant(repo_dir, "0000000000000000", b"junk")
    backend = LocalBackend(repo_dir)
    config, raw = read_config(backend)
    with pytest.raises(WrongPassword, match=r"wrong passphrase.*1 unreadable object\(s\) in keys/ were skipped"):
        unwrap(backend, b"not the passphrase", repo_id=config.id, config_digest=config_digest(raw))


def _plant_slots(repo_dir: Path, count: int, secret: bytes) -> None:
    config, raw = read_config(LocalBackend(repo_dir))
    master = MasterKey.generate()
    for _ in range(count):
        slot_id, data = wrap(master, secret, repo_id=config.id, config_digest=config_digest(raw), kdf=FAST_KDF)
        _plant(repo_dir, slot_id, data)


def test_a_flood_of_planted_slots_is_bounded_and_the_real_slot_still_opens(repo_dir: Path) -> None:
    # Well-formed slots (cheapest KDF the format allows) wrapping another key, planted after
    # the real one, plus junk beyond what a scan examines.
    _plant_slots(repo_dir, MAX_UNWRAP_TRIES + 8, b"attacker")
    for i in range(MAX_SLOT_OBJECTS):
        _plant(repo_dir, f"junk-{i:04d}", b"junk")
    backend = LocalBackend(repo_dir)
    config, raw = read_config(backend)
    # the manifest, unverified on a fresh machine, still says which slot to examine and try first
    signed = signed_slots(backend, config.id, None)
    started = time.monotonic()
    opened = unwrap(backend, PASSWORD.encode(), repo_id=config.id, config_digest=config_digest(raw), signed=signed)
    assert opened.slot_id == _slot_doc_id(repo_dir)
    assert any("only 256 were examined" in p.problem for p in opened.skipped)
    with pytest.raises(WrongPassword, match="examined"):
        unwrap(backend, b"nobody's passphrase", repo_id=config.id, config_digest=config_digest(raw), signed=signed)
    assert time.monotonic() - started < 30, "the work of one unlock must stay bounded"


def _slot_doc_id(repo_dir: Path) -> str:
    oldest = min((repo_dir / "keys").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return oldest.name


def test_key_list_shows_damage_and_key_remove_clears_it(repo_dir: Path) -> None:
    _plant(repo_dir, "0000000000000000", b"junk")
    _plant(repo_dir, "bad\nname", b"junk")
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        second = add_passphrase_slot(repo, "a second passphrase", label="second")
        rows = {row.id: row for row in slot_rows(repo)}
        assert rows["0000000000000000"].status == "damaged" and rows["bad\\nname"].status == "damaged"
        assert rows[repo.slot_id].current and rows[second].status == "ok"
        assert remove_slot(repo, "0000000000000000") == "0000000000000000"
        assert remove_slot(repo, "bad\\nname") == "bad\\nname"
        with pytest.raises(UsageError, match="unlocked with"):
            remove_slot(repo, repo.slot_id)
        remove_slot(repo, second)
        _plant(repo_dir, "zzzz", b"junk")
        with pytest.raises(UsageError, match=r"this command was unlocked with|last passphrase"):
            remove_slot(repo, repo.slot_id[:6])
        with pytest.raises(UsageError, match="name the key slot"):
            remove_slot(repo, "")
    assert sorted(p.name for p in scan_slots(LocalBackend(repo_dir))[1]) == ["zzzz"]


def test_the_last_usable_passphrase_slot_stays_even_among_damaged_ones(repo_dir: Path, tmp_path: Path) -> None:
    # A damaged object claiming to be a passphrase slot opens nothing: it does not count.
    _plant(repo_dir, "0000000000000000", _variant(repo_dir, "0000000000000000", wrapped="!!"))
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        passphrase_slot = repo.slot_id
        split = split_key(repo, shares=2, threshold=2)
    (tmp_path / "s").mkdir()
    files = write_share_sheets(split, tmp_path / "s", str(repo_dir))
    with open_repository_with_shares(LocalBackend(repo_dir), files) as repo:
        with pytest.raises(UsageError, match="last passphrase"):
            remove_slot(repo, passphrase_slot)
        remove_slot(repo, "0000000000000000")
    with open_repository(LocalBackend(repo_dir), PASSWORD) as repo:
        assert repo.key_problems == []
