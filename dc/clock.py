"""The one clock: timezone-aware UTC, and JST for what people read.

Apart from :mod:`dc.state` so that code which only needs the time (the replication sync,
read on every ``bcpctl replicate`` start) does not import SQLAlchemy with it.

One rule for every surface: machine outputs (``--json``, metrics, logs, files for programs)
carry ISO 8601 with an explicit offset; everything a person reads goes through
:func:`jst_text`, so a table, a page and a report never disagree about the day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

#: the municipalities' clock (Japan has no daylight saving time)
JST = timezone(timedelta(hours=9), "JST")

#: what a person sees where there is no time (never run, never copied)
NO_TIME = "—"


def utcnow() -> datetime:
    return datetime.now(UTC)


def jst_day(when: datetime) -> date:
    """The municipalities' calendar day of ``when``: the one day every policy judges by.

    A disaster at 06:00 JST happened "today" though UTC still says yesterday, so a filing, the
    audited decision, a lookup and a rehearsal all take their day from here, never from
    ``when.date()`` (which is UTC's day for the UTC times the code passes around). A naive
    value is UTC, as the control database stores it.
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(JST).date()


def jst_text(when: datetime | str | None, *, seconds: bool = False) -> str:
    """``when`` as a person reads it: ``YYYY-MM-DD HH:MM JST``.

    Takes an aware datetime or the ISO 8601 text a JSON document or an audit entry holds (kept
    as text there: a hash covers it). A naive value is UTC, as the control database stores it.
    ``seconds`` is for timelines whose steps fall within one minute.
    """
    if when is None or when == "":
        return NO_TIME
    value = datetime.fromisoformat(when) if isinstance(when, str) else when
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST" if seconds else "%Y-%m-%d %H:%M JST")
