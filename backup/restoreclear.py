"""Removing a directory that stands where a restored file, link or node goes (``--overwrite``).

On the backed-up host ``/srv/data`` was a symlink to the data disk; on the host restored onto,
``/srv/data`` is where that disk is mounted. ``shutil.rmtree`` would walk into the mount and
empty the other file system, failing only on the mount point itself. So a directory is removed
only if it and everything in it lie on the target's file system and no mount point is beneath
it: everything is examined first — a directory on another device, or a mount point that
``/proc/self/mountinfo`` lists (a bind mount of the same file system keeps its device number) —
and a single one refuses the whole replacement before anything is removed. The removal then
works one directory descriptor at a time (``O_NOFOLLOW``: never a link, never a path from the
root), and checks the device again as it goes, in case something was mounted meanwhile.
"""

from __future__ import annotations

import os
from collections import deque

from dc.errors import N_, Message

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Refused(Exception):
    """The directory holds (or is) a mount point, or another file system: nothing was removed."""


def remove_dir(parent_fd: int, name: str, device: int) -> None:
    """Remove the directory ``name`` beneath ``parent_fd`` and all it holds, on ``device`` only.

    Raises :class:`Refused` (nothing removed) for a mount point in it; ``OSError`` as the
    system reports it otherwise.
    """
    mounts = _mount_points_beneath(_path_of(parent_fd, name))
    if mounts:
        raise Refused(Message(N_("{path} is a mount point: it is never emptied"), path=repr(mounts[0])))
    _walk(parent_fd, name, device, remove=False)  # everything examined before anything goes
    _walk(parent_fd, name, device, remove=True)


def _walk(parent_fd: int, name: str, device: int, *, remove: bool) -> None:
    """Depth first, one descriptor per level (deep trees need no recursion); unlink as it goes if ``remove``."""
    frames: list[tuple[int, str, str, deque[tuple[str, bool]]]] = []
    try:
        frames.append(_open(parent_fd, name, name, device))
        while frames:
            fd, _, shown, rest = frames[-1]
            while rest:
                child, is_dir = rest.popleft()
                if is_dir:
                    frames.append(_open(fd, child, f"{shown}/{child}", device))
                    break
                if remove:
                    os.unlink(child, dir_fd=fd)
            else:
                fd, done, _, _ = frames.pop()
                os.close(fd)
                if remove:
                    os.rmdir(done, dir_fd=frames[-1][0] if frames else parent_fd)
    finally:
        for fd, _, _, _ in frames:
            os.close(fd)


def _open(parent_fd: int, name: str, shown: str, device: int) -> tuple[int, str, str, deque[tuple[str, bool]]]:
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        if os.fstat(fd).st_dev != device:
            raise Refused(
                Message(N_("{path} is on another file system (a mount point): never emptied"), path=repr(shown))
            )
        with os.scandir(fd) as listing:
            entries = deque((e.name, e.is_dir(follow_symlinks=False)) for e in listing)
    except BaseException:
        os.close(fd)
        raise
    return fd, name, shown, entries


def _path_of(parent_fd: int, name: str) -> str | None:
    try:
        return os.path.join(os.readlink(f"/proc/self/fd/{parent_fd}"), name)
    except OSError:
        return None


def _mount_points_beneath(path: str | None) -> list[str]:
    """Mount points at or beneath ``path`` (Linux ``/proc/self/mountinfo``; none where it is missing)."""
    if path is None:
        return []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as info:
            points = [_unescape(line.split()[4]) for line in info if len(line.split()) > 4]
    except OSError:
        return []
    return sorted(p for p in points if p == path or p.startswith(path.rstrip("/") + "/"))


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in a mount point as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
