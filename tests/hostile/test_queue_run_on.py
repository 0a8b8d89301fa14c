"""Hostile finding: a queued backup ran wherever a worker took it. The queue a job sits in is
chosen by the leader from ``run_on`` when it is queued; a job queued before ``run_on`` was set
or changed (a system moved to its database's host), or written into another queue, was run by
the worker that found it — the shared worker on the controller, or the old host's — so the
database's data crossed the machine ``run_on`` exists to keep it off. The worker judges again,
from its own configuration, and refuses a system that is not its host's.

What nothing here can stop, and is documented (docs/deployment.md §9): a worker started with
``--host db1`` on another machine. The host name is a claim; whoever can start ``serve`` with
the configuration and the control database can claim any host.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from backup.opening import open_repository
from backup.snapshot import list_snapshots
from dc.errors import BcpError
from monitoring import workqueue
from storage.local import LocalBackend
from tests.conftest import PASSWORD
from tests.monitoring.conftest import build_lab


@pytest.mark.parametrize("worker_host", [None, "db2"])
def test_a_worker_never_runs_the_backup_of_another_hosts_system(tmp_path: Path, worker_host: str | None) -> None:
    from monitoring.controller import Controller, ServiceSettings

    source = tmp_path / "src"
    source.mkdir()
    (source / "a.csv").write_text("1,住民\n")
    hosts = {name: {"site": "primary", "role": "database", "address": "127.0.0.1"} for name in ("db1", "db2")}
    lab = build_lab(
        tmp_path / "lab",
        {"goka-juki": {"tenant": "goka", "source": {"kind": "path", "path": str(source)}, "run_on": "db1"}},
        hosts=hosts,
    )
    engine = lab.engine()
    ctx = Controller(engine, lab.config, lab.root, ServiceSettings()).context
    with pytest.raises(BcpError, match="runs on db1"):
        workqueue.backup_run(ctx, "goka-juki", "backup:goka-juki@1", retried=False, host=worker_host)
    done = workqueue.backup_run(ctx, "goka-juki", "backup:goka-juki@2", retried=False, host="db1")
    assert done.startswith("snapshot")
    with open_repository(LocalBackend(Path(lab.raw["sites"]["primary"]["repository"])), PASSWORD) as repo:
        runs = collections.Counter(s.tags.get(workqueue.RUN_TAG) for s in list_snapshots(repo))
    assert runs == {"backup:goka-juki@2": 1}
    engine.dispose()
