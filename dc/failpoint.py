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
#: set in forked worker processes: the pid of the job's leader, which a crash takes down too.
LEADER_ENV = "BCPCTL_JOB_LEADER"


def failpoint(name: str) -> None:
    """SIGKILL this process (and, in a forked worker, its job's leader) if ``name`` is armed."""
    armed = os.environ.get(_ENV)
    if armed and name in armed.split(","):
        if leader := os.environ.get(LEADER_ENV):
            os.kill(int(leader), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
