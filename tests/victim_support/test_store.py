"""Filing requests: the calendar day is the municipalities' (JST), not UTC's."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.victim_support.conftest import Site
from tests.victim_support.flow import context
from victim_support.errors import PolicyRejected
from victim_support.policy import Scope
from victim_support.store import NewRequest, create_request

#: 07:30 JST on 29 November is still 28 November in UTC
EARLY_MORNING_JST = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)


def request_for(day: date) -> NewRequest:
    return NewRequest(
        partner="koga",
        tenant="goka",
        disaster_id="2026-kanto-eq",
        disaster_date=day,
        basis="APPI-69-2-3",
        purposes=("EVACUEE_IDENTIFICATION",),
        fields=("name", "address"),
        scope=Scope(all_areas=True),
        requested_by="koga-yamada",
    )


def test_a_disaster_this_morning_in_japan_is_not_in_the_future(site: Site) -> None:
    config, settings, state = context(site)
    filed = create_request(state, config, settings, request_for(date(2026, 11, 29)), EARLY_MORNING_JST)
    assert filed.status == "pending"


def test_a_disaster_tomorrow_in_japan_is_refused(site: Site) -> None:
    config, settings, state = context(site)
    with pytest.raises(PolicyRejected, match="2026-11-30 is in the future"):
        create_request(state, config, settings, request_for(date(2026, 11, 30)), EARLY_MORNING_JST)
