"""A private OpenSSH ``sshd`` on a loopback port, with its own host key and config.

Clients get a ``known_hosts`` built from the server's own host key, so they check strictly
from the first connection (no trust-on-first-use), and a client key pair authorised for the
current user. ``StrictModes no`` because temporary directories fail sshd's mode checks.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import free_port, wait_for_port

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    root: Path
    address: str
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key_pub: str
    pid: int

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_key_pub}"

    def stop(self) -> None:
        """SIGTERM and wait (up to 2.5 s); a child of this process is reaped, not left a zombie."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                if os.waitpid(self.pid, os.WNOHANG)[0] == self.pid:
                    return
            except ChildProcessError:  # not our child: poll for its disappearance instead
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"


def start_sshd(
    base: Path | None = None,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    client_key: Path | None = None,
    extra_config: str = "",
) -> SshServer:
    """Start sshd serving SFTP and shell for the current user; return its coordinates.

    ``extra_config`` is appended to ``sshd_config`` (e.g. :data:`FAST_CONFIG`).
    """
    if not os.path.exists(SSHD):
        raise RuntimeError("sshd not found: run 'make test' (installs openssh-server)")
    root = base or Path(tempfile.mkdtemp(prefix="bcpctl-sshd-"))
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)
    host_key = root / "ssh_host_ed25519_key"
    host_pub = _keygen(host_key)
    if client_key is None:
        client_key = root / "client_ed25519"
        _keygen(client_key)
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    port = port or free_port()
    config = root / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile {root / "sshd.pid"}
AuthorizedKeysFile {authorized}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
MaxStartups 100:30:200
MaxSessions 50
LogLevel ERROR
{extra_config}"""
    )
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(root / "sshd.log")])
    wait_for_port(port, host=address)
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[{address}]:{port} {host_pub}\n")
    return SshServer(root, address, port, getpass.getuser(), client_key, known_hosts, host_pub, proc.pid)


def cleanup(server: SshServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


#: Halves the cost of each new connection (the default post-quantum key exchange takes ~0.2 s on
#: a small test machine): Ansible tests open one connection per task and host.
FAST_CONFIG = "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\nPrintMotd no\nPrintLastLog no\nUseDNS no\n"


def start_sshd_hosts(base: Path, count: int, *, first_address: int = 11) -> list[SshServer]:
    """``count`` sshd instances, one per loopback address 127.0.0.<first_address + i>, as a fleet.

    They share one client key (``base/client_ed25519``), as an operator's key reaches every
    host of the consortium; each has its own host key, root directory and ``known_hosts``.
    """
    base.mkdir(parents=True, exist_ok=True)
    client_key = base / "client_ed25519"
    if not client_key.exists():
        _keygen(client_key)
    servers = []
    try:
        for i in range(count):
            address = f"127.0.0.{first_address + i}"
            root = base / f"sshd-{address}"
            servers.append(start_sshd(root, address=address, client_key=client_key, extra_config=FAST_CONFIG))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def reap_sshd(server: SshServer) -> None:
    """Stop a server this process started (kept for callers; :meth:`SshServer.stop` reaps)."""
    server.stop()


def rekey_sshd(server: SshServer) -> SshServer:
    """Restart ``server`` on the same address and port with a NEW host key (a changed host key)."""
    reap_sshd(server)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        (server.root / name).unlink(missing_ok=True)
    config = (server.root / "sshd_config").read_text()
    extra = FAST_CONFIG if FAST_CONFIG in config else ""
    return start_sshd(
        server.root, address=server.address, port=server.port, client_key=server.client_key, extra_config=extra
    )
