"""Direct SSH through paramiko against real sshd hosts: strict host keys, streaming, timeouts, facts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from dc.config import load_config
from dc.errors import AuthError, ProblemFound
from dc.facts import facts_command, parse_facts
from dc.inventory import managed_host
from dc.ssh import HostUnreachable, exec_command
from tests.dc.conftest import Fleet, dead_host, single_host_config
from tests.servers.sshd import rekey_sshd, start_sshd

pytestmark = pytest.mark.sshd


def test_exec_streams_both_streams_and_returns_the_exit_status(fleet: Fleet, tmp_path: Path) -> None:
    config, path = load_config(fleet.write_config(tmp_path))
    host = managed_host(config, "p-db", path.parent)
    chunks: list[tuple[str, bytes]] = []
    result = exec_command(host, "echo out; echo err >&2; exit 3", on_output=lambda s, d: chunks.append((s, d)))
    assert result.exit_status == 3
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    assert b"".join(d for s, d in chunks if s == "stdout") == b"out\n"
    assert b"".join(d for s, d in chunks if s == "stderr") == b"err\n"


def test_cli_exec_runs_the_command_and_maps_failures_to_exit_1(fleet: Fleet, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = str(fleet.write_config(tmp_path))
    ok = cli("dc", "exec", "p-lb", "--config", config, "--", "sh", "-c", "echo hello $((40+2))")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "hello 42\n"
    failed = cli("dc", "exec", "p-lb", "--config", config, "--json", "--", "exit 5")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["exit_status"] == 5
    assert failed.stderr == "bcpctl: error: p-lb: command exited with status 5\n"
    slow = cli("dc", "exec", "p-lb", "--config", config, "--timeout", "0.5", "--", "sleep 5")
    assert slow.returncode == 1 and "timed out after 0.5 s" in slow.stderr


def test_unknown_and_changed_host_keys_are_refused_and_never_saved(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    server = start_sshd(tmp_path / "sshd", address="127.0.0.31")
    try:
        config = single_host_config(tmp_path, server)
        known = tmp_path / "known_hosts"
        assert cli("dc", "exec", "h1", "--config", str(config), "--", "true").returncode == 0
        server = rekey_sshd(server)
        changed = cli("dc", "exec", "h1", "--config", str(config), "--", "touch", str(tmp_path / "ran"))
        assert changed.returncode == 3
        assert "host key of [127.0.0.31]:" in changed.stderr and "has CHANGED" in changed.stderr
        assert not (tmp_path / "ran").exists()
        known.write_text("")
        unknown = cli("dc", "facts", "h1", "--config", str(config))
        assert unknown.returncode == 3 and "is unknown (not in" in unknown.stderr
        assert known.read_text() == ""  # RejectPolicy: never added, never saved
        cfg, path = load_config(config)
        with pytest.raises(AuthError):
            exec_command(managed_host(cfg, "h1", path.parent), "true")
    finally:
        server.stop()


def test_unreachable_host_is_exit_1(fleet: Fleet, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config_path = fleet.write_config(tmp_path, extra_hosts={"dead": dead_host(tmp_path)})
    config, path = load_config(config_path)
    with pytest.raises(HostUnreachable, match=r"dead: cannot connect to 127\.0\.0\.1:"):
        exec_command(managed_host(config, "dead", path.parent), "true")
    proc = cli("dc", "exec", "dead", "--config", str(config_path), "--", "true")
    assert proc.returncode == 1 and "Connection refused" in proc.stderr


def test_facts_of_every_host_report_the_dead_one_without_hiding_the_others(fleet: Fleet, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config_path = fleet.write_config(tmp_path, extra_hosts={"dead": dead_host(tmp_path)})
    proc = cli("dc", "facts", "--config", str(config_path), "--json")
    assert proc.returncode == 1
    rows = {row["host"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {"p-lb", "p-db", "o-lb", "dead"}
    assert rows["dead"]["facts"] is None and "cannot connect" in rows["dead"]["error"]
    facts = rows["p-db"]["facts"]
    assert facts["hostname"] == socket.gethostname()
    assert facts["mem_total_kb"] > facts["mem_available_kb"] > 0
    assert facts["disk_path"] == str(tmp_path / "roots" / "p-db")
    assert facts["disk_total_bytes"] >= facts["disk_free_bytes"] > 0


def test_parse_facts() -> None:
    text = (
        "hostname=db01\nkernel=Linux 6.1.0\nos=Debian GNU/Linux 12 (bookworm)\ncpus=2\n"
        "uptime_seconds=1234.5\nload=0.10 0.20 0.30\nmem_total_kb=2048\nmem_available_kb=1024\n"
        "disk_total_bytes=1000\ndisk_free_bytes=400\ndisk_path=/srv\n"
    )
    facts = parse_facts("db01", text)
    assert (facts.os, facts.cpus, facts.load15, facts.disk_free_bytes) == (
        "Debian GNU/Linux 12 (bookworm)",
        2,
        0.3,
        400,
    )
    with pytest.raises(ProblemFound, match="db01: unexpected facts output"):
        parse_facts("db01", "hostname=db01\n")
    assert "'/srv/a b'" in facts_command("/srv/a b")  # the path is quoted for the remote shell
