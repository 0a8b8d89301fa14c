"""Hostile base backups and mappings against a restore's tablespace placement.

Each snapshot here is forged through the repository's own write path (validly encrypted, as
anyone holding the repository key could write it); each mapping is what an operator or a local
user sharing the restore's directory could type or plant. The promise under attack: nothing
outside the restore target (and the mapped places) changes, and a refusal is a ``BcpError``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup.baserecord import Tablespace
from backup.pgcluster import unpack_base
from backup.repository import Repository
from backup.tablespacemap import DEFAULT_DIR, place
from dc.errors import BcpError, UsageError
from tests.backup.test_base_unpack import _SPACE, _base, _snapshot
from tests.backup.test_pitr_tablespace import tree_state

#: a member: (name, kind, content or link target); kinds are tarfile's type flags
Member = tuple[str, bytes, bytes | str]


def _tar(members: list[Member]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o700 if kind == tarfile.DIRTYPE else 0o600
            if kind == tarfile.REGTYPE:
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                assert isinstance(payload, str)
                info.linkname = payload
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
    return out.getvalue()


def _realpath_overflow(dest: Path, up: int, escape: str, payload: bytes) -> list[Member]:
    """Members that walk ``os.path.realpath`` past PATH_MAX so ``filter="data"`` cannot see
    where ``escape/<file>`` lands: ``up`` directories above ``dest`` (CVE-2025-4517)."""
    steps = "abcdefghijklmnop"
    size = (os.pathconf(dest.parent, "PC_PATH_MAX") - len(str(dest)) - 1) // (len(steps) + 1)
    component = "d" * size
    members: list[Member] = []
    path = ""
    for step in steps:
        members.append((os.path.join(path, component), tarfile.DIRTYPE, b""))
        members.append((os.path.join(path, step), tarfile.SYMTYPE, component))
        path = os.path.join(path, component)
    far = os.path.join(*steps, "l" * 254)
    members.append((far, tarfile.SYMTYPE, os.path.join(*[".."] * len(steps))))
    members.append(("escape", tarfile.SYMTYPE, os.path.join(far, *[".."] * up)))
    members.append((f"escape/{escape}", tarfile.REGTYPE, payload))
    return members


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """``tmp_path``: a canary tree and the primary's tablespace beside where the restore goes."""
    (tmp_path / "canary").mkdir()
    (tmp_path / "canary" / "resident.csv").write_text("1,山田\n")
    (tmp_path / "primary-space" / "PG_15_202209061").mkdir(parents=True)
    return tmp_path


def _outside(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ``root`` but the restore target, the repository, its cache and the mapped
    place (and ``root`` itself, whose mtime the target's creation changes)."""
    skip = {".", "target", "repo", "home", "mapped"}
    return {k: v for k, v in tree_state(root).items() if k.split("/")[0] not in skip}


def _spaces(root: Path) -> list[dict[str, object]]:
    return [{"oid": 16400, "name": "juki_space", "location": str(root / "primary-space")}]


_HOSTILE_MEMBERS: dict[str, list[Member]] = {
    "dotdot": [("../canary/planted", tarfile.REGTYPE, b"x")],
    "deep dotdot": [("PG_15_202209061/../../../../canary/planted", tarfile.REGTYPE, b"x")],
    "absolute": [("/tmp/bcpctl-hostile-absolute", tarfile.REGTYPE, b"x")],
    "symlink out, then through it": [
        ("out", tarfile.SYMTYPE, "../../../canary"),
        ("out/planted", tarfile.REGTYPE, b"x"),
    ],
    "absolute symlink, then through it": [("out", tarfile.SYMTYPE, "/"), ("out/tmp/planted", tarfile.REGTYPE, b"x")],
    "hardlink to outside, then overwritten": [
        ("flag", tarfile.LNKTYPE, "../../../canary/resident.csv"),
        ("flag", tarfile.REGTYPE, b"overwritten"),
    ],
    "character device": [("null", tarfile.CHRTYPE, b"")],
    "block device": [("disk", tarfile.BLKTYPE, b"")],
    "fifo": [("pipe", tarfile.FIFOTYPE, b"")],
    "symlink in, symlink through it out": [
        ("in", tarfile.SYMTYPE, "."),
        ("out", tarfile.SYMTYPE, "in/../../../../canary"),
        ("out/planted", tarfile.REGTYPE, b"x"),
    ],
}


@pytest.mark.parametrize("stream", ["base.tar", "tablespace-16400.tar"])
@pytest.mark.parametrize("attack", sorted(_HOSTILE_MEMBERS))
def test_a_forged_tar_member_never_lands_outside_the_target(
    repo: Repository, site: Path, stream: str, attack: str
) -> None:
    members = _HOSTILE_MEMBERS[attack]
    base = _base(f"16400 {site / 'primary-space'}\n")
    space = _SPACE
    if stream == "base.tar":
        base = _forge(base, members)
    else:
        space = _forge(_SPACE, members)
    snap = _snapshot(repo, {"base.tar": base, "tablespace-16400.tar": space}, _spaces(site))
    before = _outside(site)
    with pytest.raises(BcpError) as raised:
        unpack_base(repo, snap, site / "target")
    assert "\n" not in str(raised.value)
    assert not (site / "target").exists()  # what the refused restore wrote is gone
    assert _outside(site) == before
    assert not Path("/tmp/bcpctl-hostile-absolute").exists() and not Path("/tmp/planted").exists()


def _forge(tar: bytes, members: list[Member]) -> bytes:
    """``tar``'s members followed by ``members``."""
    existing: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r") as src:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else info.linkname  # type: ignore[union-attr]
            existing.append((info.name, info.type, data))
    return _tar(existing + members)


@pytest.mark.parametrize("stream", ["base.tar", "tablespace-16400.tar"])
def test_a_realpath_overflow_in_a_tar_never_writes_outside_the_target(
    repo: Repository, site: Path, stream: str
) -> None:
    target = site / "target"
    # the base is unpacked into the target, a tablespace into <target>/pg_tblspc_data/<oid>
    dest, up = (target, 1) if stream == "base.tar" else (target / DEFAULT_DIR / "16400", 3)
    members = _realpath_overflow(dest, up, "planted", b"written by a forged snapshot\n")
    files = {"base.tar": _base(f"16400 {site / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE}
    files[stream] = _forge(files[stream], members)
    snap = _snapshot(repo, files, _spaces(site))
    before = _outside(site)
    with contextlib.suppress(BcpError):
        unpack_base(repo, snap, target)
    assert not (site / "planted").exists()
    assert _outside(site) == before


def test_a_mapping_checked_then_swapped_to_a_symlink_is_never_followed(repo: Repository, site: Path) -> None:
    """The mapping is vetted (backup/pitr.py: ``place``) before the base backup is fetched and
    unpacked, minutes later for a real database: a user sharing the directory swaps a parent
    of the mapped place for a symlink in between."""
    snap = _snapshot(
        repo,
        {"base.tar": _base(f"16400 {site / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE},
        _spaces(site),
    )
    target = site / "target"
    mapped = site / "mapped" / "juki"
    spaces = place([Tablespace(16400, "juki_space", str(site / "primary-space"))], {"16400": str(mapped)}, target)
    assert spaces == {16400: mapped}
    before = _outside(site)
    assert (site / "mapped" / "juki").is_dir()  # made by the check
    shutil.rmtree(site / "mapped")
    (site / "mapped").symlink_to(site / "canary")  # the swap, after the check
    with contextlib.suppress(BcpError):
        unpack_base(repo, snap, target, tablespaces=spaces)
    assert not (site / "canary" / "juki").exists()
    assert _outside(site) == before


def test_a_key_that_is_one_tablespaces_oid_and_anothers_name_is_never_silently_resolved(tmp_path: Path) -> None:
    spaces = [Tablespace(16400, "16401", "/srv/a"), Tablespace(16401, "zei_space", "/srv/b")]
    target = tmp_path / "target"
    try:
        placed = place(spaces, {"16401": str(tmp_path / "mapped")}, target)
    except UsageError:
        return
    assert placed[16401] == tmp_path / "mapped"  # OID 16401, as documented for a number


@pytest.mark.parametrize("spelling", ["{area}/mapped/", "{area}//mapped", "{area}/./mapped", "{area}/mapped/."])
def test_a_mapping_spelled_oddly_lands_at_its_normal_form(tmp_path: Path, spelling: str) -> None:
    spaces = [Tablespace(16400, "juki_space", "/srv/a")]
    placed = place(spaces, {"juki_space": spelling.format(area=tmp_path)}, tmp_path / "target")
    assert placed == {16400: tmp_path / "mapped"}


@pytest.mark.parametrize(
    "spelling",
    ["{target}", "{target}/", "{target}/.", "{area}", "{area}/", "{area}/..", "{target}/../target", "/", "//"],
)
def test_a_mapping_onto_the_target_or_a_parent_of_it_is_refused(tmp_path: Path, spelling: str) -> None:
    spaces = [Tablespace(16400, "juki_space", "/srv/a")]
    target = tmp_path / "target"
    with pytest.raises(UsageError, match="--tablespace-map"):
        place(spaces, {"juki_space": spelling.format(area=tmp_path, target=target)}, target)


@pytest.mark.parametrize(
    "mapped",
    [
        "canary/resident.csv/ts",
        "x" * 300,
        "a/" + "y" * 256 + "/b",
    ],
)
def test_a_mapping_the_os_cannot_hold_is_refused_before_anything_is_written(site: Path, mapped: str) -> None:
    """The CLI turns the OS error into one line (bcpctl/cli.py); the promise here is that it
    comes from the check, before the base backup is fetched and unpacked into the target."""
    spaces = [Tablespace(16400, "juki_space", str(site / "primary-space"))]
    before = _outside(site)
    with pytest.raises((UsageError, OSError)):
        place(spaces, {"16400": str(site / mapped)}, site / "target")
    assert _outside(site) == before


def test_a_mapped_directory_others_can_write_never_holds_the_restored_tablespace_as_is(
    repo: Repository, site: Path
) -> None:
    """A local user pre-creates the empty directory the operator will map to: accepted, it must
    end up private to the restore (or be refused), never left open to its creator."""
    snap = _snapshot(
        repo,
        {"base.tar": _base(f"16400 {site / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE},
        _spaces(site),
    )
    mapped = site / "mapped"
    mapped.mkdir()
    mapped.chmod(0o777)
    os.chown(mapped, 65534, 65534)  # nobody's
    target = site / "target"
    spaces = [Tablespace(16400, "juki_space", str(site / "primary-space"))]
    try:
        placed = place(spaces, {"juki_space": str(mapped)}, target)
        unpack_base(repo, snap, target, tablespaces=placed)
    except UsageError:
        return
    # the owner is handed to PostgreSQL's account afterwards (configure_recovery); the mode never is
    assert mapped.stat().st_mode & 0o077 == 0, oct(mapped.stat().st_mode)


@pytest.mark.parametrize("inside", ["primary-space/restore", "primary-data/pg_twophase/restore"])
def test_a_target_among_the_primarys_files_never_gets_the_tablespaces(site: Path, inside: str) -> None:
    """The same places a mapping may not go (backup/tablespacemap.py) reached through the target
    instead: the default ``<target>/pg_tblspc_data/<oid>`` would be inside them."""
    (site / "primary-data" / "pg_twophase").mkdir(parents=True)
    (site / "primary-data" / "PG_VERSION").write_text("15\n")
    spaces = [Tablespace(16400, "juki_space", str(site / "primary-space"))]
    with pytest.raises(UsageError):
        place(spaces, {}, site / inside)


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("{area}/a/", "{area}/a"),
        ("{area}/a/.", "{area}//a"),
        ("{area}/a", "{area}/a/b/"),
        ("{area}/a/b/..x", "{area}/a"),
    ],
)
def test_two_spellings_of_one_place_are_two_tablespaces_in_one_place(tmp_path: Path, one: str, two: str) -> None:
    spaces = [Tablespace(16400, "juki_space", "/srv/a"), Tablespace(16401, "zei_space", "/srv/b")]
    mapping = {"16400": one.format(area=tmp_path), "16401": two.format(area=tmp_path)}
    with pytest.raises(UsageError, match="two tablespaces"):
        place(spaces, mapping, tmp_path / "target")


def test_a_base_planting_the_tablespace_places_parent_is_refused(repo: Repository, site: Path) -> None:
    base = _forge(_base(f"16400 {site / 'primary-space'}\n"), [(DEFAULT_DIR, tarfile.SYMTYPE, "base")])
    snap = _snapshot(repo, {"base.tar": base, "tablespace-16400.tar": _SPACE}, _spaces(site))
    target = site / "target"
    try:
        unpack_base(repo, snap, target)
    except BcpError:
        return
    where = target / DEFAULT_DIR / "16400"
    assert os.path.realpath(where) == str(where)


_NAMES = st.sampled_from(["a", "b", "a/b", "a/b/c", "b/../a", "../canary/x", "PG_15_202209061", "./a"])
_LINKS = st.sampled_from([".", "..", "../..", "../../..", "a", "a/..", "a/b/../..", "/", "../../canary", "b"])
_MEMBER = st.one_of(
    st.tuples(_NAMES, st.just(tarfile.REGTYPE), st.just(b"planted")),
    st.tuples(_NAMES, st.just(tarfile.DIRTYPE), st.just(b"")),
    st.tuples(_NAMES, st.just(tarfile.SYMTYPE), _LINKS),
    st.tuples(_NAMES, st.just(tarfile.LNKTYPE), _LINKS),
)


@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_MEMBER, min_size=1, max_size=6), st.booleans())
def test_no_sequence_of_links_and_files_in_a_tar_writes_outside(
    repo: Repository, site: Path, members: list[Member], in_base: bool
) -> None:
    """The class of the attacks above, short of the PATH_MAX overflow: any sequence of files,
    directories, symlinks and hard links (relative, ``..``, absolute) in either stream."""
    files = {"base.tar": _base(f"16400 {site / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE}
    stream = "base.tar" if in_base else "tablespace-16400.tar"
    files[stream] = _forge(files[stream], members)
    snap = _snapshot(repo, files, _spaces(site))
    before = _outside(site)
    target = site / "target"
    try:
        unpack_base(repo, snap, target)
    except BcpError as exc:
        assert "\n" not in str(exc)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    assert _outside(site) == before


def test_a_member_named_through_dotdot_is_a_corrupt_base_backup(repo: Repository, site: Path) -> None:
    files = {"base.tar": _base(f"16400 {site / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE}
    files["tablespace-16400.tar"] = _forge(_SPACE, [("b/../a", tarfile.REGTYPE, b"planted")])
    snap = _snapshot(repo, files, _spaces(site))
    with pytest.raises(BcpError):
        unpack_base(repo, snap, site / "target")


@pytest.mark.parametrize("stream", ["base.tar", "tablespace-16400.tar"])
def test_a_hard_link_to_a_missing_member_is_a_corrupt_base_backup(repo: Repository, site: Path, stream: str) -> None:
    files = {"base.tar": _base(f"16400 {site / 'primary-space'}\n"), "tablespace-16400.tar": _SPACE}
    files[stream] = _forge(files[stream], [("a", tarfile.LNKTYPE, "never-stored")])
    snap = _snapshot(repo, files, _spaces(site))
    with pytest.raises(BcpError):
        unpack_base(repo, snap, site / "target")
