"""A one-shot replication reads its pin without SQLAlchemy and opens the full ledger beside its work.

The look (:func:`dc.statepeek.open_at_head`) must answer exactly what the full open answers,
or not at all: a pin read through it is the ledger's own, and every database the full open
refuses (missing, empty, older, newer, another form of URL) is left to the full open, so a
run still stops with that refusal before it writes anything offsite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from dc import schema
from dc.clock import utcnow
from dc.state import connect, open_state
from dc.statepeek import open_at_head
from replication import ledgeropen
from replication.ledger import Ledger
from replication.ledgeropen import OpeningLedger
from replication.records import Pin
from replication.sync import replicate
from storage.local import LocalBackend
from tests.replication import primary

HEX = "0123456789abcdef"
KEY = st.text(HEX, min_size=64, max_size=64)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    pins=st.dictionaries(
        st.text(HEX, min_size=32, max_size=32),
        st.tuples(
            st.text(HEX, min_size=64, max_size=64), st.integers(0, 2**62), st.text(HEX, min_size=64, max_size=64)
        ),
        max_size=4,
    ),
    asked=st.text(HEX, min_size=32, max_size=32),
)
def test_the_pin_read_without_sqlalchemy_is_the_ledgers(pins: dict[str, tuple[str, int, str]], asked: str) -> None:
    ledger = Ledger(open_state())
    with ledger.engine.begin() as conn:
        conn.execute(text("DELETE FROM replication_pins"))
    for repository, (key, sequence, digest) in pins.items():
        ledger.set_pin(Pin(repository, key, sequence, digest), utcnow())
    assert open_at_head() is not None  # the look is taken, not left to the full open
    opening = OpeningLedger()
    for repository in [*pins, asked]:
        assert opening.pin(repository) == ledger.pin(repository)


def _older(url: str) -> None:
    schema.upgrade(connect(url, create=True), schema.PREVIOUS_RELEASE)


def _newer(url: str) -> None:
    engine = open_state(url, create=True)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9001'"))


def _empty(url: str) -> None:
    connect(url, create=True).dispose()
    Path(url.removeprefix("sqlite:///")).touch()


@pytest.mark.parametrize("make", [_older, _newer, _empty], ids=["older", "newer", "empty"])
def test_a_database_the_full_open_refuses_is_not_looked_into(tmp_path: Path, make: Callable[[str], None]) -> None:
    url = f"sqlite:///{tmp_path / 'control.db'}"
    make(url)
    assert open_at_head(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{dir}/absent.db",
        "sqlite:///{dir}/control.db?timeout=5",
        "sqlite:///{dir}/control%2Edb",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://bcpctl@127.0.0.1:1/control",
    ],
)
def test_only_a_plain_sqlite_file_is_looked_into_and_none_is_created(tmp_path: Path, url: str) -> None:
    open_state(f"sqlite:///{tmp_path / 'control.db'}", create=True).dispose()
    assert open_at_head(url.format(dir=tmp_path)) is None
    assert not (tmp_path / "absent.db").exists()


def test_a_run_on_an_older_control_database_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    source = LocalBackend(tmp_path / "primary", create=True)
    target = LocalBackend(tmp_path / "offsite", create=True)
    primary.init(source)
    primary.backup(source, primary.write_tree(tmp_path / "data"))
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _older(url)
    with pytest.raises(schema.SchemaBehind, match="run bcpctl db upgrade"):
        replicate(source, target, OpeningLedger(url))
    assert list(target.list("")) == []


class FirstWriteSignals(LocalBackend):
    def __init__(self, root: Path, written: threading.Event) -> None:
        super().__init__(root, create=True)
        self.written = written

    def save(self, key: str, data: bytes | bytearray | memoryview, *, retain_until: datetime | None = None) -> None:
        super().save(key, data, retain_until=retain_until)
        self.written.set()


def test_objects_are_copied_while_the_ledger_is_still_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full ledger opens only once the first object has arrived offsite: the run must not wait for it."""
    written = threading.Event()
    source = LocalBackend(tmp_path / "primary", create=True)
    target = FirstWriteSignals(tmp_path / "offsite", written)
    primary.init(source)
    primary.backup(source, primary.write_tree(tmp_path / "data"))
    real = ledgeropen.open_ledger

    def after_the_first_write(state_url: str | None = None) -> Ledger:
        if not written.wait(30):
            raise AssertionError("nothing was copied before the ledger opened")
        return real(state_url)

    monkeypatch.setattr(ledgeropen, "open_ledger", after_the_first_write)
    result = replicate(source, target, OpeningLedger())
    assert result.ok and result.pinned_now
    assert Ledger(open_state()).pin(result.repository) is not None
