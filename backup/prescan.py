"""How much a path backup will read, counted while it runs (restic's concurrent scanner), so
a terminal can show totals and an ETA from the first second.

The count runs in a forked child process, never a thread: the backup forks its reader
processes later, and a process that forks while another of its threads runs can hand its
children a lock held forever. The child walks the tree the way the archiver does (same
excludes, no link followed, a file with several names counted once), writes one line with
its totals to a pipe and exits; :meth:`Prescan.poll` never blocks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from dataclasses import dataclass

from backup.archiver import exclusion


@dataclass(frozen=True)
class Totals:
    files: int
    bytes: int


def count_tree(root: str, exclude: tuple[str, ...] = ()) -> Totals:
    """Regular files beneath ``root`` and their bytes, as a backup of it would read them."""
    excluded = exclusion(exclude)
    files = size = 0
    seen: set[tuple[int, int]] = set()
    stack = [("", root)]
    while stack:
        rel_dir, full_dir = stack.pop()
        try:
            with os.scandir(full_dir) as listing:
                children = list(listing)
        except OSError:
            continue
        for child in children:
            rel = f"{rel_dir}/{child.name}" if rel_dir else child.name
            if excluded(rel):
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append((rel, child.path))
            elif stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                files += 1
                size += st.st_size
    return Totals(files, size)


class Prescan:
    """A child process counting ``root``; :meth:`poll` gives its totals once it has them."""

    def __init__(self, root: str, exclude: tuple[str, ...] = ()) -> None:
        self.totals: Totals | None = None
        read_end, write_end = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: count, report, leave without running the parent's cleanup
            code = 0
            try:
                os.close(read_end)
                totals = count_tree(root, exclude)
                os.write(write_end, f"{totals.files} {totals.bytes}\n".encode())
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        os.set_blocking(read_end, False)
        self._read_end: int | None = read_end
        self._buffer = b""

    def poll(self) -> Totals | None:
        if self.totals is not None or self._read_end is None:
            return self.totals
        try:
            data = os.read(self._read_end, 64)
        except BlockingIOError:
            return None
        self._buffer += data
        if data and not self._buffer.endswith(b"\n"):
            return None
        if self._buffer.endswith(b"\n"):
            files, size = self._buffer.split()
            self.totals = Totals(int(files), int(size))
        self.close()
        return self.totals

    def close(self) -> None:
        """Stop the count if it still runs, and reap the child."""
        if self._read_end is None:
            return
        os.close(self._read_end)
        self._read_end = None
        if self.totals is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._pid, 0)

    def __enter__(self) -> Prescan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
