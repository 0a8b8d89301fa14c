"""Sandbox isolation from production, judged by route lookups and probes inside our own namespace.

The namespaces are made by the test and removed after. Nothing is sent anywhere except to
loopback inside a namespace; the documentation address 192.0.2.10 (RFC 5737) is only ever
looked up in a routing table, never contacted.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.isolation import Endpoint, route_isolated, sandbox_not_production
from tests.failover.conftest import Built


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"bcpt-{secrets.token_hex(3)}"
    _ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def test_an_empty_namespace_reaches_no_production_endpoint(netns: str) -> None:
    loopback = route_isolated(netns, Endpoint("naka-juki source", "127.0.0.1", 5432))
    assert loopback.ok, loopback.detail
    remote = route_isolated(netns, Endpoint("host db01", "192.0.2.10", 22))
    assert remote.ok and "192.0.2.10" in remote.detail


def test_a_routed_namespace_is_not_isolated_and_a_blackhole_is(netns: str) -> None:
    # A veth pair with both ends inside the namespace: a route exists, nothing can leave.
    _ip("-n", netns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    _ip("-n", netns, "addr", "add", "198.51.100.1/24", "dev", "v0")
    _ip("-n", netns, "link", "set", "v0", "up")
    _ip("-n", netns, "link", "set", "v1", "up")
    _ip("-n", netns, "route", "add", "192.0.2.0/24", "dev", "v0")
    routed = route_isolated(netns, Endpoint("host db01", "192.0.2.10", 22))
    assert not routed.ok and "routable" in routed.detail
    _ip("-n", netns, "route", "replace", "blackhole", "192.0.2.0/24")
    assert route_isolated(netns, Endpoint("host db01", "192.0.2.10", 22)).ok
    assert not route_isolated("bcpt-missing-ns", Endpoint("x", "192.0.2.10", 22)).ok
    named = route_isolated(netns, Endpoint("db", "db.example.invalid", 5432))
    assert not named.ok and "is a name" in named.detail


@pytest.mark.postgres
def test_a_drill_directory_inside_production_is_refused(example: Built) -> None:
    site = example.config.sites["offsite"]
    checks = {c.name: c for c in sandbox_not_production(example.config, site, example.config_dir)}
    assert checks["drill directory is not production"].ok
    inside = site.model_copy(
        update={"drill_dir": str(Path(example.config.systems["goka-juki"].source.path or "").parent)}
    )
    clash = {c.name: c for c in sandbox_not_production(example.config, inside, example.config_dir)}
    assert not clash["drill directory is not production"].ok
    assert "goka-juki source" in clash["drill directory is not production"].detail


@pytest.mark.postgres
def test_readiness_proves_isolation_from_a_sandbox_namespace(example: Built, netns: str) -> None:
    from failover.drill import run_drill
    from failover.drillrequest import DrillRequest

    ctx = example.context()
    ctx.settings = ctx.settings.model_copy(update={"sandbox_netns": netns})
    result = run_drill(ctx, DrillRequest(mode="readiness", tenant="goka"), handle_signals=False)
    routes = [c for c in result.checks if c.name.startswith(f"no route from {netns}")]
    # five PostgreSQL sources, five failover targets, four hosts at the primary
    assert len(routes) == 14 and all(c.ok for c in routes), [c.detail for c in routes if not c.ok]
    assert result.status == "passed", result.verdict()
    assert not any("network isolation" in w for w in result.warnings)


@pytest.mark.postgres
def test_drill_logins_are_created_from_a_scram_verifier_postgresql_accepts(example: Built) -> None:
    """The verifier we compute equals the one the server computes for the same password and salt."""
    import base64

    import psycopg

    from failover.sandbox import scram_verifier

    role = f"bcpt_scram_{secrets.token_hex(3)}"
    with psycopg.connect(example.server.dsn(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'Pa55-word_xyz'")
        try:
            (stored,) = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()  # type: ignore[misc]
        finally:
            conn.execute(f"DROP ROLE {role}")
    iterations, salt = stored.split("$")[1].split(":")
    ours = scram_verifier("Pa55-word_xyz", salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == stored
