"""Health probes against real sockets, repositories, SQLite files and PostgreSQL."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from dc.config import Host
from monitoring import health, observations
from monitoring.schedule import JobSpec, interval_trigger
from monitoring.tasks import JobContext, health_checks
from tests.monitoring.conftest import Lab
from tests.servers.ports import free_port
from tests.servers.postgres import PostgresServer


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.11", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("192.0.2.1", False),
        ("hv01.invalid", False),
        ("", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert health.is_loopback(address) is loopback


def test_tcp_probe_up_and_down() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        up = health.probe_host_tcp("hv01", Host(site="primary", role="hv", address="127.0.0.1", port=port), 2.0)
    assert (up.ok, up.probe, up.site) == (True, "tcp_connect", "primary")
    down = health.probe_host_tcp("hv02", Host(site="primary", role="hv", address="127.0.0.1", port=free_port()), 2.0)
    assert down.ok is False and "Connection refused" in (down.detail or "")


def test_tcp_probe_never_contacts_a_non_loopback_address(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the probe tried to connect")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    for address in ("192.0.2.10", "hv01.invalid"):
        obs = health.probe_host_tcp("remote", Host(site="offsite", role="hv", address=address), 2.0)
        assert obs.ok is None and "not probed" in (obs.detail or "")


def test_repository_probe(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory({"goka-juki": {"tenant": "goka"}})
    config = lab.config
    found = {obs.kind: obs for obs in health.probe_repository(config, "primary", lab.root)}
    assert found["repository"].ok is True
    root = Path(lab.raw["sites"]["primary"]["repository"])
    assert found["repository_size"].value == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert 0 < found["filesystem"].value <= found["filesystem"].value2  # type: ignore[operator]
    (missing,) = health.probe_repository(config, "offsite", lab.root)
    assert (missing.kind, missing.ok) == ("repository", False)
    assert "does not exist" in (missing.detail or "")


def test_source_probes(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    lab = lab_factory(
        {
            "ok-sqlite": {"tenant": "goka"},
            "gone-sqlite": {"tenant": "goka", "missing": True},
            "ok-path": {"tenant": "goka", "source": {"kind": "path", "path": str(tmp_path / "files")}},
            "gone-path": {"tenant": "goka", "source": {"kind": "path", "path": str(tmp_path / "nothing")}},
            "cmd": {"tenant": "goka", "source": {"kind": "command", "command": "echo hi"}},
        }
    )
    config = lab.config
    result = {sid: health.probe_source(sid, system, lab.root, 2.0) for sid, system in config.systems.items()}
    assert result["ok-sqlite"].ok is True  # type: ignore[union-attr]
    assert result["gone-sqlite"].ok is False  # type: ignore[union-attr]
    assert result["ok-path"].ok is True  # type: ignore[union-attr]
    assert result["gone-path"].ok is False  # type: ignore[union-attr]
    assert result["cmd"] is None  # cannot be probed without running it


@pytest.mark.postgres
def test_postgres_source_probe(postgres: PostgresServer, lab_factory: Callable[..., Lab]) -> None:
    dsn = postgres.create_database("probe_juki")
    lab = lab_factory(
        {
            "pg-up": {"tenant": "goka", "source": {"kind": "postgres", "dsn": dsn}},
            "pg-nodb": {"tenant": "goka", "source": {"kind": "postgres", "dsn": postgres.dsn("no_such_db")}},
        }
    )
    config = lab.config
    up = health.probe_source("pg-up", config.systems["pg-up"], None, 2.0)
    nodb = health.probe_source("pg-nodb", config.systems["pg-nodb"], None, 2.0)
    assert up is not None and up.ok is True
    assert nodb is not None and nodb.ok is False and "no_such_db" in (nodb.detail or "")


def test_health_job_records_and_forgets_removed_subjects(lab_factory: Callable[..., Lab]) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        lab = lab_factory(
            {"goka-juki": {"tenant": "goka"}},
            hosts={
                "hv01": {"site": "primary", "role": "hypervisor", "address": "127.0.0.1", "port": port},
                "hv02": {"site": "primary", "role": "hypervisor", "address": "127.0.0.1", "port": free_port()},
            },
        )
        engine = lab.engine()
        context = JobContext(engine, lab.config, lab.root)
        spec = JobSpec("health", "health", interval_trigger("health", 60), 60)
        summary = health_checks(context, spec)
    assert "failing" in summary
    got = {(obs.kind, obs.subject): obs.ok for obs in observations.latest(engine)}
    assert got[("host", "hv01")] is True
    assert got[("host", "hv02")] is False
    assert got[("repository", "primary")] is True
    assert got[("repository", "offsite")] is False
    assert got[("source", "goka-juki")] is True
    # hv02 leaves the configuration: its old result must not linger as a metric
    del lab.raw["hosts"]["hv02"]
    lab.write()
    health_checks(JobContext(engine, lab.config, lab.root), spec)
    assert ("host", "hv02") not in {(obs.kind, obs.subject) for obs in observations.latest(engine)}


@pytest.mark.postgres
def test_postgres_sources_of_one_server_are_probed_with_one_connection(
    postgres: PostgresServer, lab_factory: Callable[..., Lab]
) -> None:
    """The health job's connections follow the database servers, not the systems."""
    systems = {
        f"pg-{i:02d}": {"tenant": "goka", "source": {"kind": "postgres", "dsn": postgres.create_database(f"many_{i}")}}
        for i in range(12)
    }
    systems["pg-gone"] = {"tenant": "goka", "source": {"kind": "postgres", "dsn": postgres.dsn("gone_db")}}
    lab = lab_factory(systems)
    connects: list[str] = []
    real = psycopg.connect

    def counted(*args: object, **kwargs: object) -> psycopg.Connection:
        connects.append("x")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg, "connect", counted)
        found = {obs.subject: obs for obs in health.probe_all(lab.config, lab.root) if obs.kind == "source"}
    assert len(connects) == 1
    assert all(found[f"pg-{i:02d}"].ok for i in range(12))
    assert found["pg-gone"].ok is False and "gone_db" in (found["pg-gone"].detail or "")
