"""A burst of concurrent lookups is held to the per-hour limits like a sequence of them.

The control database is PostgreSQL in production: counting the last hour's lookups and adding
this one in a READ COMMITTED transaction let every lookup of a burst see the same count, so a
brute force of dates of birth fired in parallel was never limited.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

from dc.config import load_config
from dc.state import open_state
from tests.servers.postgres import PostgresServer
from tests.victim_support.conftest import Site, base_site, site
from tests.victim_support.test_lookup import DISASTER, residents, with_lookups
from victim_support.errors import PolicyRejected
from victim_support.lookup import lookup_evacuee
from victim_support.lookuprules import LookupQuery
from victim_support.settings import load_export_settings

__all__ = ["base_site", "site"]
BURST = 12


def test_a_burst_of_lookups_on_a_postgresql_control_database_is_limited(site: Site, postgres: PostgresServer) -> None:
    with_lookups(site, per_official_per_hour=2, per_partner_per_hour=100)
    person = residents(site)[0]
    config, path = load_config(site.config_path)
    settings = load_export_settings(config, str(path))
    dsn = postgres.create_database("hostile_lookup_burst")
    state = open_state(dsn.replace("postgresql://", "postgresql+psycopg://"), create=True)
    now = datetime.now(UTC)
    born = date.fromisoformat(person["birth_date"])
    query = LookupQuery("tsukuba", "goka", DISASTER, person["family_name"], person["given_name"], born, None, "職員")
    answered: list[int] = []
    refused: list[int] = []
    failed: list[str] = []
    start = threading.Barrier(BURST)

    def one(i: int) -> None:
        start.wait()
        try:
            lookup_evacuee(state, config, settings, query, now=now, config_dir=site.root)
            answered.append(i)
        except PolicyRejected:
            refused.append(i)
        except Exception as exc:
            failed.append(repr(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed[0]
    assert len(answered) == 2 and len(refused) == BURST - 2
