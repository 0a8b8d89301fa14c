"""A refusal that names a moment shows it as a person reads it: JST with its label, on the JST date.

The moments are pinned at 00:30 and 08:59 JST, when UTC's date is still the day before: a line
that formats the stored UTC value (``2026-12-12T15:30:00+00:00``) shows the wrong day and no zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from backup.pitr import RecoveryTarget, check_moment, choose_base
from backup.snapshot import Snapshot
from bcpctl import i18n
from dc.errors import BcpError
from failover.control_postgres import not_streaming
from tests.backup.test_pitr import _base
from tests.backup.walsite import SYSTEM
from tests.bcpctl.test_japanese_fragments import english_words
from tests.failover.documents import PINNED, WRONG_DAY

_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d"


def _both(error: BcpError) -> tuple[str, str]:
    return error.message, i18n.error_message(error, "ja")


def _refusal(call: Callable[[], object]) -> BcpError:
    try:
        call()
    except BcpError as exc:
        return exc
    raise AssertionError("not refused")


def _assert_jst(line: str, shown: str) -> None:
    assert shown in line and WRONG_DAY not in line, line
    assert not re.search(_ISO, line), line


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_pitr_refusals_show_jst(when: datetime) -> None:
    shown = PINNED[when]
    future = _refusal(lambda: check_moment(RecoveryTarget(time=when + timedelta(minutes=1)), when))
    bases: list[Snapshot] = [_base((when + timedelta(minutes=1)).isoformat())]
    early = _refusal(lambda: choose_base(bases, RecoveryTarget(time=when)))
    none = _refusal(lambda: choose_base([], RecoveryTarget(time=when)))
    for error in (future, early, none):
        english, japanese = _both(error)
        for line in (english, japanese):
            _assert_jst(line, shown[:16])
        assert english_words(japanese, SYSTEM, "--to-time", "--to-latest") == [], japanese


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_a_standby_not_streaming_shows_its_copy_in_jst(when: datetime) -> None:
    english, japanese = _both(not_streaming("offsite", "primary", None, when))
    for line in (english, japanese):
        _assert_jst(line, PINNED[when][:16])
    assert english_words(japanese, "offsite", "primary") == [], japanese
