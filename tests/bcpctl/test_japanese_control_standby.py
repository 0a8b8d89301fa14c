"""A control-server standby that cannot be made, or does not stream, is explained to a Japanese
operator in Japanese: the settings it lacks, the standby's report and its problems, in the lines
``control standby init`` and a handover raise (English unchanged, word for word)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bcpctl import i18n
from dc.errors import N_, joined
from failover.control_server import settings_problems
from failover.control_standby import StandbyReport, receiver_problem
from failover.controlplane import ControlPlaneError
from tests.bcpctl.test_japanese_fragments import english_words

#: what PostgreSQL or the operator wrote, read as it is: settings and their values, a receiver's state
_VALUES = ("= on", "= replica", "は minimal", "は replica", "は 0", "startup")


def _japanese(error: ControlPlaneError) -> str:
    return i18n.error_message(error, "ja")


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.sampled_from(["minimal", "replica"]),
    st.sampled_from(["0", "10"]),
    st.sampled_from(["off", "on"]),
    st.sampled_from(["off", "on"]),
)
def test_missing_settings_read_japanese(level: str, senders: str, hints: str, pages: str) -> None:
    found = {"wal_level": level, "max_wal_senders": senders, "max_replication_slots": senders}
    found |= {"wal_log_hints": hints, "data_checksums": "off", "full_page_writes": pages}
    problems = settings_problems(found)
    if level == "minimal":
        assert "wal_level = replica (it is minimal)" in problems
    if pages == "off":
        assert "full_page_writes = on: pg_rewind needs it" in problems
    if not problems:
        return
    error = ControlPlaneError(
        N_("the control server of {source} needs {problems} (postgresql.conf, then a restart); nothing was changed"),
        source="s1",
        problems=joined(problems),
    )
    assert error.message.count("; ") == len(problems)  # and the one before "nothing was changed"
    assert english_words(_japanese(error), "s1", *_VALUES) == [], _japanese(error)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.sampled_from(["pg_basebackup", "pg_rewind", "reconfigured"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, "startup"]),
)
def test_a_standby_not_streaming_reads_japanese(method: str, kept: bool, streaming: bool, receiver: str | None) -> None:
    report = StandbyReport("s2", "s1", "bcp_s2", method=method, streaming=streaming)
    report.kept_aside = "/srv/pg.old" if kept else None
    report.problems.append(receiver_problem(receiver))
    english = report.summary()
    assert english.startswith("control server of s2: standby of s1 (")
    assert english.endswith(", slot bcp_s2), streaming" if streaming else ", slot bcp_s2), NOT streaming")
    assert report.problems == [f"WAL receiver: {receiver or 'not running'}"]
    error = ControlPlaneError(N_("{report}: {problems}"), report=english, problems=joined(report.problems))
    assert english_words(_japanese(error), "s1", "s2", "bcp_s2", "/srv/pg.old", *_VALUES) == [], _japanese(error)
