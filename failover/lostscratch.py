"""Where listing a failover's lost work recovers its two scratch clusters: a recorded sandbox.

Each scratch cluster is a full copy of a system's database — residents' data — and, while it
replays, a running PostgreSQL server. A process killed in the middle leaves both behind, so the
directory is a drill sandbox like any other: named ``bcpdrill-lost-…``, recorded in the control
database before it is created under the run that needs it, removed (its servers stopped first,
:func:`backup.pgcluster.stop_clusters_in`) and verified gone when the listing ends, and swept
by ``bcpctl drill cleanup`` (or the next drill) when the run died first.

It lives in the system's temporary directory, not the site's ``drill_dir``: the PostgreSQL
account must reach the data directories inside, and ``drill_dir`` may be private to bcpctl.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from dc.clock import utcnow
from failover.cleanup import remove, still_present
from failover.records import end_unfinished, start_run
from failover.resources import ResourceRecord, intend_resource, set_resource_state
from failover.sandbox import DIR_PREFIX

#: the run kind of a ``failover lost`` listing made on its own (a failover's listing is its run's)
LOST_RUN = "lost"


@contextmanager
def lost_scratch(state: Engine, run_id: str) -> Iterator[Path]:
    """A fresh scratch directory recorded under ``run_id``, removed and verified gone afterwards
    (a removal that fails leaves the record open for ``drill cleanup``)."""
    base = Path(tempfile.gettempdir())
    root = base / f"{DIR_PREFIX}lost-{secrets.token_hex(6)}"
    rid = intend_resource(state, run_id, "directory", str(root), str(base))
    root.mkdir(mode=0o700)
    root.chmod(0o711)  # the clusters' account must reach their data directories inside
    set_resource_state(state, rid, "created")
    record = ResourceRecord(rid, run_id, "directory", str(root), str(base), "created", None)
    try:
        yield root
    finally:
        try:
            remove(record)
            gone = not still_present(record)
        except OSError as exc:
            set_resource_state(state, rid, "leftover", exc.strerror or str(exc))
        else:
            set_resource_state(state, rid, "removed" if gone else "leftover")


@contextmanager
def lost_run(state: Engine, consortium: str, site: str | None, declared: datetime | None) -> Iterator[str]:
    """A run record for ``failover lost`` made on its own, so that its scratch clusters have an
    owner whose death ``drill cleanup`` can tell (:func:`failover.records.is_dead`)."""
    now = utcnow()
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"  # as failover.lifecycle.new_run_id
    start_run(
        state, run_id, kind=LOST_RUN, mode="list", consortium=consortium, site=site,
        declared_at=declared or now, deadline=None,
    )  # fmt: skip
    try:
        yield run_id
    except BaseException as exc:
        # no document is stored: the listing names residents, the control database keeps no copy
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        end_unfinished(state, run_id, "failed", first)
        raise
    end_unfinished(state, run_id, "passed", "")
