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
a PostgreSQL data directory or tablespace.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from backup.baserecord import Tablespace
from dc.errors import N_, UsageError

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
    known = {str(s.oid): s for s in spaces} | {s.name: s for s in spaces if s.name}
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
        if space.oid in mapped:
            raise UsageError(N_("--tablespace-map maps tablespace {oid} twice"), oid=space.oid)
        mapped[space.oid] = _vetted(Path(raw), target, spaces)
    for one, two in itertools.combinations(sorted(mapped.values()), 2):
        if _overlap(one, two):
            raise UsageError(N_("--tablespace-map puts two tablespaces at {path} and {other}"), path=one, other=two)
    return placed | mapped


def _vetted(path: Path, target: Path, spaces: Sequence[Tablespace]) -> Path:
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
