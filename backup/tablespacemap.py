"""Where a restore puts a base backup's tablespaces: never where the primary keeps them.

A tablespace lives outside the data directory, at a path the primary chose; restoring it
there would write into the primary's live files on a shared host. So each is placed under the
restore target, ``<target>/pg_tblspc_data/<oid>``, unless the operator maps it elsewhere with
``--tablespace-map OID=PATH`` or ``NAME=PATH`` (pgBackRest's ``--tablespace-map``,
``pg_basebackup -T``). A mapped path must lie in the allowed area — the directory the target
is in, where the operator chose to restore — and is refused (one line, exit 2) before anything
is written when it is: outside that area (a symlink resolved first), reached through a
symlink inside it (a planted trap), an existing file or non-empty directory, the target or
inside it, overlapping another mapping or any location the primary recorded, or inside
a PostgreSQL data directory or tablespace. A key that is one tablespace's OID and another's
name is refused as ambiguous. The target itself may not lie among the primary's tablespaces
or in a data directory either (the default places are under it), and every path written into
``tablespace_map`` must be UTF-8. Each mapped directory is made (or, existing and empty, made
private: mode 0700, the restore's owner) when it is vetted, before the base backup is fetched:
a path the system cannot hold is refused then, and nothing is left of it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from backup.baserecord import Tablespace
from dc.errors import N_, UsageError, os_reason

#: under the target: one directory per tablespace, named by its OID
DEFAULT_DIR = "pg_tblspc_data"
#: what PostgreSQL keeps in a tablespace (``PG_15_202209061``) and in a data directory
_VERSION_DIR = re.compile(r"^PG_\d+_\d+$")


def parse_mapping(values: Sequence[str]) -> dict[str, str]:
    """``OID=PATH`` / ``NAME=PATH`` options, each key once."""
    found: dict[str, str] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise UsageError(N_("--tablespace-map {value} is not OID=PATH or NAME=PATH"), value=value)
        if key in found:
            raise UsageError(N_("--tablespace-map maps {key} twice"), key=key)
        found[key] = path
    return found


def place(spaces: Sequence[Tablespace], mapping: Mapping[str, str], target: Path) -> dict[int, Path]:
    """Each recorded tablespace's directory in the restore (by OID), every mapping vetted."""
    target = Path(os.path.abspath(target))
    _vet_target(target, spaces)
    known = {str(s.oid): s for s in spaces} | {s.name: s for s in spaces if s.name}
    by_oid = {str(s.oid): s for s in spaces}
    placed = {s.oid: target / DEFAULT_DIR / str(s.oid) for s in spaces}
    mapped: dict[int, Path] = {}
    for key, raw in mapping.items():
        space = known.get(key)
        if space is None:
            raise UsageError(
                N_("--tablespace-map {key}: the base backup has no such tablespace (it has: {known})"),
                key=key,
                known=", ".join(f"{s.oid} ({s.name})" for s in spaces) or "-",
            )
        if key in by_oid and by_oid[key] is not space:
            raise UsageError(
                N_("--tablespace-map {key} is the OID of tablespace {name} and the name of tablespace {oid}"),
                key=key,
                name=by_oid[key].name,
                oid=space.oid,
            )
        if space.oid in mapped:
            raise UsageError(N_("--tablespace-map maps tablespace {oid} twice"), oid=space.oid)
        mapped[space.oid] = _vetted(Path(raw), target, spaces)
    for one, two in itertools.combinations(sorted(mapped.values()), 2):
        if _overlap(one, two):
            raise UsageError(N_("--tablespace-map puts two tablespaces at {path} and {other}"), path=one, other=two)
    made: list[Path] = []
    try:
        for path in mapped.values():
            _make(path, made)
    except BaseException:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return placed | mapped


def _vet_target(target: Path, spaces: Sequence[Tablespace]) -> None:
    """The target holds the default places: the rules of a mapped path that it can break."""
    if spaces:
        _utf8(target, "--target-dir")
    real = Path(os.path.realpath(target))
    for space in spaces:
        for where in {Path(space.location), Path(os.path.realpath(space.location))}:
            if _overlap(real, where) or _overlap(target, where):
                raise UsageError(
                    N_("--target-dir {path} overlaps the primary's tablespace {name} at {location}"),
                    path=target,
                    name=space.name,
                    location=space.location,
                )
    for step in real.parents:
        if _postgres_files(step):
            raise UsageError(
                N_("--target-dir {path} is inside PostgreSQL's files at {cluster}"), path=target, cluster=step
            )


def _utf8(path: Path, option: str) -> None:
    """``tablespace_map`` is text: PostgreSQL reads each path in it as the server's encoding."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            N_("{option} path {path} is not UTF-8: tablespace_map cannot name it"),
            option=option,
            path=os.fsencode(path).decode("utf-8", "backslashreplace"),
        ) from None


def _make(path: Path, made: list[Path]) -> None:
    """``path`` made component by component (``made``: what was created), never through a link;
    an existing one (vetted empty) made private to the restore."""
    step = Path(path.anchor)
    try:
        for part in path.parts[1:]:
            step = step / part
            try:
                # parents as ``mkdir -p`` makes them: PostgreSQL's account must pass through them
                os.mkdir(step, 0o700 if step == path else 0o777)
                made.append(step)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(step).st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(step)) from None
        os.chmod(path, 0o700, follow_symlinks=False)
        if os.lstat(path).st_uid != os.geteuid():
            os.chown(path, os.geteuid(), os.getegid(), follow_symlinks=False)
    except OSError as exc:
        raise UsageError(
            N_("--tablespace-map path {path} cannot be made: {reason}"), path=path, reason=os_reason(exc)
        ) from None


def _vetted(path: Path, target: Path, spaces: Sequence[Tablespace]) -> Path:
    _utf8(path, "--tablespace-map")
    if not path.is_absolute() or ".." in path.parts or any(ord(c) < 32 or ord(c) == 127 for c in str(path)):
        raise UsageError(N_("--tablespace-map path {path} must be absolute, without '..'"), path=path)
    area = Path(os.path.realpath(target.parent))
    real = Path(os.path.realpath(path))
    if real == area or not real.is_relative_to(area):
        raise UsageError(
            N_("--tablespace-map path {path} is outside {area}, where the restore target is"), path=path, area=area
        )
    for step in [path, *path.parents]:
        if step.is_symlink() and Path(os.path.realpath(step.parent)).is_relative_to(area):
            raise UsageError(N_("--tablespace-map path {path} goes through the symlink {link}"), path=path, link=step)
    for where in {target, Path(os.path.realpath(target))}:
        if _overlap(real, where):
            raise UsageError(
                N_("--tablespace-map path {path} overlaps the restore target {target}"), path=path, target=target
            )
    for space in spaces:
        for where in {Path(space.location), Path(os.path.realpath(space.location))}:
            if _overlap(real, where):
                raise UsageError(
                    N_("--tablespace-map path {path} overlaps the primary's tablespace {name} at {location}"),
                    path=path,
                    name=space.name,
                    location=space.location,
                )
    if real.exists() and (not real.is_dir() or any(real.iterdir())):
        raise UsageError(N_("--tablespace-map path {path} exists and is not an empty directory"), path=path)
    for step in [real, *real.parents]:
        if _postgres_files(step):
            raise UsageError(
                N_("--tablespace-map path {path} is inside PostgreSQL's files at {cluster}"), path=path, cluster=step
            )
    return real


def _overlap(one: Path, two: Path) -> bool:
    return one == two or one.is_relative_to(two) or two.is_relative_to(one)


def _postgres_files(directory: Path) -> bool:
    """A data directory (``PG_VERSION``) or a tablespace (its version directory)."""
    try:
        return (directory / "PG_VERSION").exists() or any(_VERSION_DIR.match(p.name) for p in directory.iterdir())
    except OSError:
        return False
