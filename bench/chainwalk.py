"""What the forget/signer race costs a format-2 signature: the links it reads back for removals.

A signer reads the links signed since the head it knew before it wrote its snapshots, looking
for a removal another process's ``forget`` signed meanwhile (``backup/chainsign.py``
``_signed_away``). This times, on a local repository whose chain holds ``LINKS`` deltas after
its checkpoint (1,440 at most, a day at one a minute):

* a CLI backup's signature (a fresh process: the unlock read the head);
* the same with no position known (no manifest of the key readable at the unlock): the walk
  goes back to the checkpoint;
* ``serve``'s first minute after a start (45 jobs of one snapshot, then the batch signed) and
  its next minute, CPU per job (the unlock's Argon2id excluded).

In seconds, not minutes; run it from another tree to compare
(``PYTHONPATH=/that/tree python bench/chainwalk.py``). Figures depend on the machine's load.

    python -m bench.chainwalk [--links 1400] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

PASSWORD = "bench chainwalk passphrase"
CHEAP_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}
#: serve's batch: ~0.75 backups a second, signed once a minute
JOBS = 45


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1400, help="deltas after the checkpoint")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ["BCPCTL_CACHE_DIR"] = tempfile.mkdtemp(prefix="chainwalk-cache-")

    import backup
    from backup import chainsign
    from backup.keyring import KeyRing
    from backup.manifest import sign_manifest
    from backup.manifeststate import Journal
    from backup.opening import init_repository, open_repository
    from backup.snapshot import Snapshot, save_snapshot
    from storage.backend import Backend
    from storage.local import LocalBackend

    reads: list[str] = []
    real = chainsign.link_reader

    def counted(backend: Backend) -> Callable[[str], bytes]:
        load = real(backend)

        def read(key: str) -> bytes:
            reads.append(key)
            return load(key)

        return read

    chainsign.link_reader = counted
    root = Path(tempfile.mkdtemp(prefix="chainwalk-")) / "repo"
    init_repository(LocalBackend(root, create=True), PASSWORD, kdf=CHEAP_KDF)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as other:
        for n in range(args.links):
            sign_manifest(other, now=start + timedelta(seconds=n))

    def snapshot() -> Snapshot:
        return Snapshot(datetime.now(UTC), "h", "u", "path", "/x", ("0" * 64,), system="s")

    def cli(unknown: bool) -> float:
        with open_repository(LocalBackend(root), PASSWORD, sign_on_close=False) as repo:
            if unknown:
                repo.journal.seen = None
            save_snapshot(repo, snapshot())
            reads.clear()
            started = time.process_time()
            sign_manifest(repo)
            return time.process_time() - started

    def serve(minute: int) -> float:
        ring = KeyRing(sign_every=3600)
        with ring.open(LocalBackend(root), PASSWORD) as repo:
            if minute:
                save_snapshot(repo, snapshot())
        if minute:
            with ring.open(LocalBackend(root), PASSWORD, sign_now=True):
                pass
        reads.clear()
        started = time.process_time()
        for _ in range(JOBS):
            with ring.open(LocalBackend(root), PASSWORD) as repo:
                save_snapshot(repo, snapshot())
        with ring.open(LocalBackend(root), PASSWORD, sign_now=True):
            pass
        spent = (time.process_time() - started) / JOBS
        ring.close()
        return spent

    def report(label: str, run: Callable[[], float]) -> None:
        times = [run() for _ in range(args.repeat)]
        print(
            f"  {label:<46} {statistics.median(times) * 1000:8.2f} ms CPU "
            f"(median of {len(times)}, min {min(times) * 1000:.2f}), {len(reads)} link reads"
        )

    print(f"{Path(backup.__file__).parent.parent}: {args.links} links after the checkpoint")
    report("CLI signature, fresh process", lambda: cli(False))
    if hasattr(Journal(), "seen"):
        report("CLI signature, no position known", lambda: cli(True))
    report("serve's first minute, per job", lambda: serve(0))
    report("serve's next minute, per job", lambda: serve(1))


if __name__ == "__main__":
    main()
