"""What a base backup's tar may hold, and where its members may be written, checked by bcpctl
itself rather than by ``tarfile``'s ``data`` filter alone.

The ``data`` filter judges a link by ``os.path.realpath``, which gives up past PATH_MAX: a
chain of links whose resolved path grows that long points anywhere (CVE-2025-4517, fixed only
in Python 3.11.13). ``pg_basebackup -Ft`` writes no link a restore needs — a tablespace is
named in ``tablespace_map``, not linked from ``pg_tblspc``, and a ``pg_wal`` that is a link on
the primary is stored as a directory — so every symbolic or hard link member is refused, with
absolute names and ``..`` components, before ``tarfile`` sees it. The filter stays as a second
check (devices, FIFOs, modes). What an unpack that fails wrote is removed, never through a link.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from backup.errors import HostileSnapshot
from dc.errors import N_, UsageError


def vetted_members(members: Iterable[tarfile.TarInfo], short_id: str) -> Iterator[tarfile.TarInfo]:
    """``members`` as read, each refused (one line) when it is a link or names a path outside."""
    for member in members:
        name = _shown(member.name)
        if member.issym() or member.islnk():
            raise HostileSnapshot(
                N_("base backup {short_id} holds the link {name}: a base backup holds none, none is followed"),
                short_id=short_id,
                name=name,
            )
        if member.name.startswith("/") or ".." in member.name.split("/"):
            raise HostileSnapshot(
                N_("base backup {short_id} holds the member {name}, named outside the directory it is unpacked in"),
                short_id=short_id,
                name=name,
            )
        yield member


def _shown(name: str) -> str:
    """A member's name on one line, bounded."""
    return "".join(c if c.isprintable() else "?" for c in name[:200])


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_dir(top: Path, path: Path) -> int:
    """A descriptor of the directory ``path``, opened from ``top`` one component at a time,
    none followed if it is a link: what is written through it lands in that directory even
    if a parent is swapped for a link afterwards."""
    fd = os.open(top, _DIR_FLAGS)
    step = top
    try:
        for part in path.relative_to(top).parts:
            step = step / part
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and step.is_symlink():
            raise _swapped(path, step) from None
        raise
    return fd


def refuse_links(top: Path, path: Path) -> None:
    """``top`` and every existing component of ``path`` below it, each ``lstat``'ed: none is a
    symlink.

    Checked right before a directory is written into: a place vetted when the restore began
    may have had a parent swapped for a link since (a user sharing the directory)."""
    step = top
    for part in ("", *path.relative_to(top).parts):
        step = step / part
        try:
            mode = os.lstat(step).st_mode
        except FileNotFoundError:
            return  # the rest does not exist yet: the restore creates it, no link there
        if stat.S_ISLNK(mode):
            raise _swapped(path, step)


def _swapped(path: Path, link: Path) -> UsageError:
    return UsageError(
        N_("{path} goes through the symlink {link}, which appeared after the restore checked it"), path=path, link=link
    )


def remove_unpacked(target: Path, existed: bool, places: list[Path]) -> None:
    """What a failed or refused unpack wrote (plaintext of the cluster): the target (or, when it
    existed, its contents: it was empty) and the contents of each tablespace place outside it
    (each was empty; the directories themselves stay). A place reached through a link now is
    left alone: removing through it would delete elsewhere."""
    for where in [p for p in places if not p.is_relative_to(target)]:
        try:
            refuse_links(Path(where.anchor), where)
        except (UsageError, OSError):
            continue
        _remove_contents(where)
    if existed:
        _remove_contents(target)
    else:
        shutil.rmtree(target, ignore_errors=True)


def _remove_contents(directory: Path) -> None:
    try:
        children = list(directory.iterdir())
    except OSError:
        return
    for child in children:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
