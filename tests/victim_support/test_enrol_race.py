"""Hostile finding: ``partner enrol`` (and ``partner confirm``, which enrols) checked that the
id was free in one connection and then, in its transaction, deleted whatever row held the id
("a removed one re-enrols") before inserting its own. Two enrolments of one id at once — two
operators on the day, or a confirm beside an enrol — both passed the check, and the later one
silently replaced the partner the earlier one had just enrolled (another municipality, another
signing key), each operator told it succeeded."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from dc.errors import UsageError
from tests.victim_support.conftest import Site
from tests.victim_support.flow import context
from tests.victim_support.test_enrolment import BANDO, SAKAI, do_enrol, keys
from victim_support.enrolment import with_enrolled


def test_two_enrolments_of_one_id_at_once_enrol_one(site: Site, tmp_path: Path) -> None:
    recipient, key = keys(tmp_path)
    towns = [BANDO, SAKAI]
    outcomes: dict[int, str] = {}
    # another writer holds the control database while both enrolments check the id (reads go on
    # under WAL): both reach their transaction before either has written
    _config, _settings, state = context(site)
    assert state.url.database is not None
    writer = sqlite3.connect(state.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")

    def enrol_one(n: int) -> None:
        try:
            do_enrol(site, recipient, str(key) + ".pub", partner_id="shelter", **towns[n])
            outcomes[n] = "enrolled"
        except UsageError as exc:
            assert "already enrolled" in exc.message, exc.message
            outcomes[n] = "refused"

    threads = [threading.Thread(target=enrol_one, args=(n,)) for n in range(len(towns))]
    for thread in threads:
        thread.start()
    time.sleep(2)
    writer.execute("ROLLBACK")
    writer.close()
    for thread in threads:
        thread.join()
    winners = [n for n, outcome in outcomes.items() if outcome == "enrolled"]
    assert len(outcomes) == len(towns) and len(winners) == 1, outcomes
    config, _settings, state = context(site)
    assert with_enrolled(config, state).partners["shelter"].lg_code == towns[winners[0]]["lg_code"]
