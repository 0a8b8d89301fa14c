"""Direct SSH to managed hosts (paramiko): quick commands and facts, with strict host keys.

Host keys are checked against the site's pinned known_hosts only, with ``RejectPolicy``: an
unknown or changed key is an :class:`~dc.errors.AuthError` (exit 3) and is never added or
saved (DESIGN.md "Security rules that never bend"; CodeQL py/paramiko-missing-host-key-validation).
The keys are loaded as *system* host keys, which paramiko never writes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import paramiko

from dc.errors import N_, AuthError, ConfigError, ProblemFound, library_reason
from dc.inventory import ManagedHost
from dc.secrets import secret_from_env

KEY_PASSPHRASE_ENV = "BCPCTL_SSH_KEY_PASSPHRASE"
CONNECT_TIMEOUT = 10.0

OutputFn = Callable[[str, bytes], None]


class HostUnreachable(ProblemFound):
    """The host did not answer, refused the connection or dropped it (exit 1)."""


@dataclass(frozen=True)
class ExecResult:
    host: str
    command: str
    exit_status: int
    seconds: float
    stdout: str
    stderr: str


def _reason(exc: BaseException) -> str:
    """The operator's words for a connection failure ("Connection refused", "timed out")."""
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
        exc = next(iter(exc.errors.values()))
    return library_reason(exc)


def _host_key_name(host: ManagedHost) -> str:
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


@contextmanager
def connect(host: ManagedHost, *, timeout: float = CONNECT_TIMEOUT) -> Iterator[paramiko.SSHClient]:
    """An authenticated client for ``host``; host key checked against the pinned known_hosts."""
    client = paramiko.SSHClient()
    try:
        client.load_system_host_keys(host.known_hosts)
    except FileNotFoundError:
        raise ConfigError(
            N_("known_hosts file {known_hosts} (site {site}) does not exist"),
            known_hosts=host.known_hosts,
            site=host.site,
        ) from None
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigError(
            N_("cannot read known_hosts file {known_hosts}: {exc}"),
            known_hosts=host.known_hosts,
            exc=library_reason(exc),
        ) from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            host.address,
            port=host.port,
            username=host.user,
            key_filename=host.key_file,
            passphrase=secret_from_env(KEY_PASSPHRASE_ENV, "SSH key passphrase"),
            # an agent when no key file is configured; never random keys from ~/.ssh
            allow_agent=host.key_file is None,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
        )
    except paramiko.BadHostKeyException:
        client.close()
        raise AuthError(
            N_(
                "{name}: host key of {host} has CHANGED and does not match {known_hosts}; refusing to "
                "connect (verify the new key out of band before replacing it)"
            ),
            name=host.name,
            host=_host_key_name(host),
            known_hosts=host.known_hosts,
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise AuthError(N_("{name}: authentication as {user} was rejected"), name=host.name, user=host.user) from None
    except paramiko.SSHException as exc:
        client.close()
        if "not found in known_hosts" in str(exc):
            raise AuthError(
                N_(
                    "{name}: host key of {host} is unknown (not in {known_hosts}); refusing to connect: pin it "
                    "in the site's known_hosts first"
                ),
                name=host.name,
                host=_host_key_name(host),
                known_hosts=host.known_hosts,
            ) from None
        raise HostUnreachable(N_("{name}: SSH failed: {exc}"), name=host.name, exc=library_reason(exc)) from None
    except (OSError, EOFError) as exc:
        client.close()
        raise HostUnreachable(
            N_("{name}: cannot connect to {address}:{port}: {exc}"),
            name=host.name,
            address=host.address,
            port=host.port,
            exc=_reason(exc),
        ) from None
    try:
        yield client
    finally:
        client.close()


def exec_command(
    host: ManagedHost,
    command: str,
    *,
    on_output: OutputFn | None = None,
    timeout: float | None = None,
    capture: bool = True,
) -> ExecResult:
    """Run ``command`` on ``host``, streaming output chunks to ``on_output(stream, data)``.

    ``timeout`` bounds the whole command; the channel is closed when it expires.
    """
    started = time.monotonic()
    out: list[bytes] = []
    err: list[bytes] = []
    with connect(host) as client:
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=CONNECT_TIMEOUT)
        channel.settimeout(0.2)
        channel.exec_command(command)
        while True:
            got = False
            for stream, ready, read, sink in (
                ("stdout", channel.recv_ready, channel.recv, out),
                ("stderr", channel.recv_stderr_ready, channel.recv_stderr, err),
            ):
                while ready():
                    data = read(65536)
                    if not data:
                        break
                    got = True
                    if capture:
                        sink.append(data)
                    if on_output is not None:
                        on_output(stream, data)
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            if timeout is not None and time.monotonic() - started > timeout:
                channel.close()
                raise ProblemFound(N_("{name}: command timed out after {timeout:g} s"), name=host.name, timeout=timeout)
            if not got:
                time.sleep(0.02)
        status = channel.recv_exit_status()
    return ExecResult(
        host=host.name,
        command=command,
        exit_status=status,
        seconds=round(time.monotonic() - started, 3),
        stdout=b"".join(out).decode("utf-8", "replace"),
        stderr=b"".join(err).decode("utf-8", "replace"),
    )
