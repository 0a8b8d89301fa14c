"""A private single-node Ceph cluster with a RADOS Gateway (S3, Object Lock) on 127.0.0.1.

Shaped like Ceph's own ``vstart.sh`` and the facts in ``shared/notes/real-servers.md``: one
monitor, one memstore OSD, pool size 1, ``auth none``, no mgr, radosgw's beast frontend on a
loopback port, one S3 user with fixed keys. Every file (config, keyring, run dir, admin
sockets, logs) lives in one temporary directory; only the processes started here are
stopped, by pid.

Usable from Python (``start_ceph()``) and from a shell (``python -m tests.servers.ceph start
DIR`` prints the endpoint; ``stop DIR`` stops it) for the benchmark and manual runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers.ports import free_port, wait_for_port

ACCESS_KEY = "BCPCTLTESTACCESSKEY0"
SECRET_KEY = "bcpctl-test-secret-key-not-a-real-one-000"
FSID = "7c3a2f4e-5b1d-4e8a-9f0c-1d2e3f4a5b6c"


@dataclass
class CephServer:
    root: Path
    mon_port: int
    rgw_port: int
    pids: dict[str, int] = field(default_factory=dict)
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def conf(self) -> Path:
        return self.root / "ceph.conf"

    def env(self) -> dict[str, str]:
        """Environment a boto3 client (and bcpctl's S3 backend) picks credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "default",
        }

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]  # the product uses botocore; no boto3 stubs in dev
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="default",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 2},
            ),
        )

    def create_bucket(self, name: str, *, object_lock: bool = False) -> str:
        client = self.client()
        kwargs = {"ObjectLockEnabledForBucket": True} if object_lock else {}
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name, **kwargs)
        return name

    def url(self, bucket: str, prefix: str = "") -> str:
        """A bcpctl repository URL for ``bucket``/``prefix`` on this gateway."""
        path = f"{bucket}/{prefix}".rstrip("/")
        return f"s3://{path}?endpoint={self.endpoint}&region=default"

    # -- radosgw alone can be stopped and started again (the "S3 server dies" fault) ------

    def stop_rgw(self) -> None:
        _kill(self.pids.pop("rgw", 0))

    def start_rgw(self) -> None:
        self.pids["rgw"] = _spawn(self, ["radosgw", "-n", "client.rgw"], "rgw")
        _wait_http(self.rgw_port, 60)

    def stop(self) -> None:
        for name in ("rgw", "osd", "mon"):
            _kill(self.pids.pop(name, 0))


def _conf_text(root: Path, mon_port: int, rgw_port: int, memstore_bytes: int) -> str:
    return f"""[global]
fsid = {FSID}
mon host = [v2:127.0.0.1:{mon_port},v1:127.0.0.1:{mon_port + 1}]
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
keyring = {root}/keyring
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1

[mon]
mon data = {root}/mon
mon cluster log file = {root}/log/cluster.log
paxos propose interval = 0.05
paxos min wait = 0.01
mon osd full ratio = 0.99
mon osd nearfull ratio = 0.98

[osd]
osd data = {root}/osd
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
osd max object name len = 460
osd max object namespace len = 64
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw]
ms mon client mode = crc
# tcp_nodelay: without it each answer on a kept-alive connection waits ~40 ms for a delayed ACK
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {root}/rgw
rgw dns name = 127.0.0.1
rgw thread pool size = 64
rgw enable usage log = false
"""


def _run(server: CephServer, argv: list[str], timeout: float = 60) -> str:
    done = subprocess.run(
        [*argv[:1], "-c", str(server.conf), *argv[1:]], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def _spawn(server: CephServer, argv: list[str], name: str) -> int:
    log = open(server.root / "log" / f"{name}.stdout", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen([*argv[:1], "-f", "-c", str(server.conf), *argv[1:]], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc.pid


def _kill(pid: int) -> None:
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except ChildProcessError:
        # not our child (started by another process through the CLI): poll until gone
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_http(port: int, timeout: float) -> None:
    import urllib.request

    wait_for_port(port, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"radosgw on 127.0.0.1:{port} does not answer HTTP after {timeout}s")


def _wait_osd_up(server: CephServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dump = json.loads(_run(server, ["ceph", "osd", "dump", "--format", "json"]))
        if any(osd.get("up") for osd in dump.get("osds", [])):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the OSD did not come up after {timeout}s (see {server.root}/log)")


def start_ceph(base: Path | None = None, *, memstore_bytes: int = 2 * 1024**3) -> CephServer:
    """Start mon, OSD and radosgw; create the S3 user. About 2-20 s on 2 cores.

    memstore keeps every object in RAM (``memstore_bytes`` caps it); the benchmark asks for
    more than the tests. A start whose step hangs (once, on a quiet machine, ``ceph osd new``
    waited 60 s for a monitor that had its port: two workers pick free ports at the same
    moment) is stopped and made again on fresh ports, twice at most; then it fails.
    """
    for _ in range(2):
        try:
            return _start_ceph_once(base, memstore_bytes)
        except subprocess.TimeoutExpired:
            if base is not None:
                shutil.rmtree(base, ignore_errors=True)
    return _start_ceph_once(base, memstore_bytes)


def _start_ceph_once(base: Path | None, memstore_bytes: int) -> CephServer:
    for tool in ("ceph-mon", "ceph-osd", "radosgw", "monmaptool", "ceph-authtool"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found: run 'make test' (installs ceph-mon, ceph-osd, radosgw)")
    root = base or Path(tempfile.mkdtemp(prefix="bcpctl-ceph-"))
    for sub in ("run", "log", "mon", "osd", "rgw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    mon_port = _port_pair()
    server = CephServer(root, mon_port, free_port())
    server.conf.write_text(_conf_text(root, mon_port, server.rgw_port, memstore_bytes))
    try:
        _run(server, ["ceph-authtool", "--create-keyring", str(root / "keyring"), "--gen-key", "-n", "mon."])
        _run(
            server,
            [
                "monmaptool",
                "--create",
                "--fsid",
                FSID,
                "--addv",
                "a",
                f"[v2:127.0.0.1:{mon_port},v1:127.0.0.1:{mon_port + 1}]",
                str(root / "monmap"),
            ],
        )
        _run(server, ["ceph-mon", "--mkfs", "-i", "a", "--monmap", str(root / "monmap")])
        server.pids["mon"] = _spawn(server, ["ceph-mon", "-i", "a"], "mon")
        wait_for_port(mon_port, 30)
        osd_uuid = str(uuid.uuid4())
        osd_id = _run(server, ["ceph", "osd", "new", osd_uuid]).strip()
        _run(server, ["ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid], timeout=120)
        server.pids["osd"] = _spawn(server, ["ceph-osd", "-i", osd_id], "osd")
        _wait_osd_up(server, 60)
        server.start_rgw()
        _run(
            server,
            [
                "radosgw-admin",
                "user",
                "create",
                "--uid",
                "bcpctl",
                "--display-name",
                "bcpctl tests",
                "--access-key",
                ACCESS_KEY,
                "--secret",
                SECRET_KEY,
            ],
        )
    except BaseException:
        server.stop()
        raise
    return server


def _port_pair() -> int:
    """Two consecutive free ports (the monitor's msgr2 and msgr1 addresses)."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and _is_free(port + 1):
            return port
    raise RuntimeError("no two consecutive free loopback ports")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cleanup(server: CephServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def _main(argv: list[str]) -> int:
    """``start DIR`` (prints a JSON line, leaves the cluster running) or ``stop DIR``."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.servers.ceph start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    state = root / "server.json"
    if argv[0] == "start":
        server = start_ceph(root)
        state.write_text(
            json.dumps(
                {
                    "endpoint": server.endpoint,
                    "mon_port": server.mon_port,
                    "rgw_port": server.rgw_port,
                    "pids": server.pids,
                    "access_key": server.access_key,
                    "secret_key": server.secret_key,
                }
            )
        )
        print(state.read_text())
        return 0
    doc = json.loads(state.read_text())
    server = CephServer(root, doc["mon_port"], doc["rgw_port"], dict(doc["pids"]))
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
