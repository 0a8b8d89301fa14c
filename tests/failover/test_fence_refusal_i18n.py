"""A planned switchover refused at the fence rolls the primary back; the refusal's line, stored as
the run's error and read later, keeps the rollback hook's detail in the reader's language."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bcpctl.i18n import shown
from dc.errors import N_, Message
from failover.errors import FailoverRefused
from failover.failover import _fence
from failover.hooks import HookResult, ManualHooks
from tests.bcpctl.test_japanese_fragments import english_words


class _Unfenceable(ManualHooks):
    """Hooks whose fence answers and fails: what a host that cannot write its marker reports."""

    def fence(self, site: str, run_id: str) -> HookResult:
        return HookResult("fence", site, False, Message(N_("fence: {names} unreachable (site down?)"), names="p-db"))


def test_the_rollback_in_a_refused_switchover_reads_in_japanese() -> None:
    ctx: Any = SimpleNamespace(config=SimpleNamespace(primary_site="primary"))
    request: Any = SimpleNamespace(planned=True, to_site="offsite")
    with pytest.raises(FailoverRefused) as refused:
        _fence(ctx, _Unfenceable(), request, "failover-1")
    rolled = refused.value.params["rolled"]
    assert isinstance(rolled, Message) and "manual: operators failback site primary" in rolled
    japanese = shown(refused.value, "ja")
    assert english_words(japanese, "primary", "offsite", "p-db", "failback", "drills.failover.hooks") == [], japanese
