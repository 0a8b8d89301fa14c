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
        try:
            os.kill(self.pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(self.pid, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"


def start_sshd(
    base: Path | None = None, *, address: str = "127.0.0.1", port: int | None = None, client_key: Path | None = None
) -> SshServer:
    """Start sshd serving SFTP and shell for the current user; return its coordinates."""
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
"""
    )
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(root / "sshd.log")])
    wait_for_port(port, host=address)
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[{address}]:{port} {host_pub}\n")
    return SshServer(root, address, port, getpass.getuser(), client_key, known_hosts, host_pub, proc.pid)


def cleanup(server: SshServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
