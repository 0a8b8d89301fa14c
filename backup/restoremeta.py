"""Owner, mode and times of restored entries — and setuid/setgid only together with their owner.

A setuid bit lends whoever runs a program its owner's rights. Where restore cannot give an
entry its recorded owner — an unprivileged container whose user namespace does not map the
ids, NFS with root squash, a file system without owners, a restore not run as root — the
entry belongs to whoever restores it, and keeping S_ISUID would turn an ordinary user's
setuid-to-themselves program into a setuid-root one. GNU tar clears S_ISUID/S_ISGID exactly
when it cannot restore the owner; here the bits are set only where ``fstat`` shows the recorded
uid (S_ISUID) and gid (S_ISGID) after the ``chown``. Every entry whose owner or bits were not
kept is returned as a note for the restore to count and name — never silently.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from backup.tree import Entry
from dc.errors import N_, Message, os_reason


def apply_metadata(fd: int, entry: Entry, *, as_root: bool) -> str | None:
    """Owner (as root), mode and mtime through an open descriptor (no path lookup).

    Returns why the recorded owner or setuid/setgid bits were not kept, ``None`` if all were.
    """
    uid, gid = _ids(entry)
    failed = _chown(lambda: os.fchown(fd, uid, gid)) if as_root else None
    mode, dropped = _mode(entry, lambda: os.fstat(fd))
    os.fchmod(fd, mode)
    mtime = int(entry.get("mtime", 0))
    os.utime(fd, ns=(mtime, mtime))
    return _note(entry, failed, dropped)


def link_metadata(dir_fd: int, name: str, entry: Entry, *, as_root: bool, chmod: bool) -> str | None:
    """Owner, mode (``chmod``: a node made under a name nobody else knows, never a link) and mtime
    of the entry itself, never of what a link points at; a note as :func:`apply_metadata`."""
    uid, gid = _ids(entry)
    failed = None
    if as_root:
        failed = _chown(lambda: os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False))
    dropped = 0
    if chmod:
        mode, dropped = _mode(entry, lambda: os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
        os.chmod(name, mode, dir_fd=dir_fd)
    mtime = int(entry.get("mtime", 0))
    os.utime(name, ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)
    return _note(entry, failed, dropped)


def _ids(entry: Entry) -> tuple[int, int]:
    return int(entry.get("uid", -1)), int(entry.get("gid", -1))


def _chown(change: Callable[[], None]) -> str | None:
    try:
        change()
    except OSError as exc:  # ids this host (or user namespace) cannot map, root squash, no owners
        return os_reason(exc) if exc.strerror else type(exc).__name__
    return None


def _mode(entry: Entry, owner: Callable[[], os.stat_result]) -> tuple[int, int]:
    """The recorded mode without the setuid/setgid bits whose owner the entry did not get, and
    those bits. The entry's owner is looked up (``owner``) only for a mode with such bits: one
    system call less for every other entry."""
    mode = int(entry.get("mode", 0o600)) & 0o7777
    if not mode & (stat.S_ISUID | stat.S_ISGID):
        return mode, 0
    st = owner()
    uid, gid = _ids(entry)
    dropped = (stat.S_ISUID if st.st_uid != uid else 0) | (stat.S_ISGID if st.st_gid != gid else 0)
    dropped &= mode
    return mode & ~dropped, dropped


def _note(entry: Entry, failed: str | None, dropped: int) -> str | None:
    if failed is None and not dropped:
        return None
    uid, gid = _ids(entry)
    bits = "/".join(name for bit, name in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")) if dropped & bit)
    owner = f"{uid}:{gid}"
    if failed is not None and bits:
        return Message(
            N_("owner {owner} not restored ({failed}); its {bits} bit cleared"), owner=owner, failed=failed, bits=bits
        )
    if failed is not None:
        return Message(N_("owner {owner} not restored ({failed})"), owner=owner, failed=failed)
    if bits:
        return Message(N_("{bits} bit cleared: the restored entry is not owned by {owner}"), bits=bits, owner=owner)
    return None
