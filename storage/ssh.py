"""SSH connections with pinned host keys, for the SFTP backend.

Strict host-key checking always (DESIGN "Security rules that never bend"): the server's key
must already be in a known_hosts file — the site's ``known_hosts`` from the configuration,
``?known_hosts=`` in the URL, ``$BCPCTL_KNOWN_HOSTS`` or ``~/.ssh/known_hosts``, in that order —
and paramiko's ``RejectPolicy`` turns an unknown key into an error. An unknown or changed key
is an :class:`~dc.errors.AuthError` (exit 3), never trust-on-first-use. Authentication is a
key file (``?key=`` or ``$BCPCTL_SSH_KEY``), else the SSH agent; never a password.

Throughput choices: a 64 MiB channel window (reads do not stall waiting for window
adjustments on a long fat link) and AES-GCM first (one pass for cipher and MAC).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dc.errors import N_, AuthError, UsageError, library_reason, os_reason
from storage.errors import Unreachable

KNOWN_HOSTS_ENV = "BCPCTL_KNOWN_HOSTS"
KEY_ENV = "BCPCTL_SSH_KEY"
WINDOW = 64 * 1024 * 1024
PACKET = 32 * 1024
_FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int

    @property
    def label(self) -> str:
        """How known_hosts names the host: ``[host]:port`` off port 22."""
        return f"[{self.host}]:{self.port}" if self.port != 22 else self.host


def known_hosts_file(target: SshTarget, *candidates: str | None) -> Path:
    """The first configured known_hosts file (each must exist), else ``~/.ssh/known_hosts``."""
    for candidate in (*candidates, os.environ.get(KNOWN_HOSTS_ENV)):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise UsageError(N_("known_hosts file {path} does not exist"), path=path)
            return path
    default = Path("~/.ssh/known_hosts").expanduser()
    if default.is_file():
        return default
    raise UsageError(
        N_(
            "no known_hosts file to check {label} against: set the site's known_hosts, "
            "${KNOWN_HOSTS_ENV} or ?known_hosts= (host keys are never accepted on first use)"
        ),
        label=target.label,
        KNOWN_HOSTS_ENV=KNOWN_HOSTS_ENV,
    )


def key_file(explicit: str | None) -> Path | None:
    """The private key to authenticate with; ``None`` means the SSH agent."""
    chosen = explicit or os.environ.get(KEY_ENV)
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise UsageError(N_("SSH key file {path} does not exist"), path=path)
    return path


class SftpSession:
    """One SSH connection and its SFTP channel."""

    def __init__(self, client: Any, sftp: Any) -> None:
        self.client = client
        self.sftp = sftp

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sftp.close()
        with contextlib.suppress(Exception):
            self.client.close()


def _transport_factory(sock: Any, **kwargs: Any) -> Any:
    import paramiko

    transport = paramiko.Transport(sock, default_window_size=WINDOW, default_max_packet_size=PACKET, **kwargs)
    options = transport.get_security_options()
    fast = [c for c in _FAST_CIPHERS if c in options.ciphers]
    options.ciphers = tuple(fast + [c for c in options.ciphers if c not in fast])
    return transport


def open_sftp(target: SshTarget, known_hosts: Path, key: Path | None, timeout: float) -> SftpSession:
    """Connect, check the host key strictly, authenticate, open SFTP; errors are one clear line."""
    import paramiko

    client = paramiko.SSHClient()
    client.get_host_keys().load(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    auth: dict[str, Any] = {"key_filename": str(key), "allow_agent": False} if key else {"allow_agent": True}
    try:
        client.connect(
            target.host,
            target.port,
            username=target.user,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            transport_factory=_transport_factory,
            **auth,
        )
        transport = client.get_transport()
        assert transport is not None, "connect() returned, so the transport exists"
        sftp = paramiko.SFTPClient.from_transport(transport, window_size=WINDOW, max_packet_size=PACKET)
    except paramiko.BadHostKeyException:
        client.close()
        raise AuthError(
            N_(
                "the host key of {label} does not match {known_hosts} (changed key: possible "
                "man-in-the-middle); refusing to connect"
            ),
            label=target.label,
            known_hosts=known_hosts,
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise AuthError(
            N_("SSH server {label} rejected the SSH key for user {user}"), label=target.label, user=target.user
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        if "known_hosts" in str(exc):
            raise AuthError(
                N_("unknown host key for {label}: not in {known_hosts}; refusing to connect"),
                label=target.label,
                known_hosts=known_hosts,
            ) from None
        raise Unreachable(
            N_("SSH handshake with {label} failed: {exc}"), label=target.label, exc=library_reason(exc)
        ) from None
    except (OSError, EOFError) as exc:
        client.close()
        reason = os_reason(exc) if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise Unreachable(
            N_("cannot reach SFTP server {label} ({reason})"), label=target.label, reason=reason
        ) from None
    return SftpSession(client, sftp)
