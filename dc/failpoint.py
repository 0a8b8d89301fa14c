"""Named crash points for fault tests.

Crash-consistency claims ("a backup killed after writing packs but before its index leaves a
repository that checks clean") are only worth something if the kill lands exactly there.
Tests set ``BCPCTL_FAILPOINTS=name[,name...]`` and the process SIGKILLs itself when it
reaches a point of that name — the same idea as etcd's gofail or TiKV's fail-rs. Unset, a
failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_ENV = "BCPCTL_FAILPOINTS"


def failpoint(name: str) -> None:
    """SIGKILL this process if ``name`` is armed in ``BCPCTL_FAILPOINTS``."""
    armed = os.environ.get(_ENV)
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
