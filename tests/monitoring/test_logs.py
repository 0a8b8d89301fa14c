"""Logs are machine output: every timestamp is ISO 8601 with an explicit offset, in both formats."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from monitoring.logs import JsonLinesFormatter, TextFormatter

#: 2026-12-13 00:30 JST, where the host's local date could differ from UTC's
CREATED = datetime.fromisoformat("2026-12-12T15:30:00.250+00:00").timestamp()


def _record() -> logging.LogRecord:
    record = logging.LogRecord("bcpctl.jobs", logging.INFO, __file__, 1, "backup %s done", ("goka-juki",), None)
    record.created = CREATED
    record.system = "goka-juki"
    return record


def test_text_and_json_logs_carry_iso_8601_with_offset() -> None:
    text = TextFormatter().format(_record())
    assert text.startswith("2026-12-12T15:30:00.250+00:00 INFO bcpctl.jobs: backup goka-juki done")
    doc = json.loads(JsonLinesFormatter().format(_record()))
    assert doc["ts"] == "2026-12-12T15:30:00.250+00:00"
    assert datetime.fromisoformat(doc["ts"]).timestamp() == CREATED
