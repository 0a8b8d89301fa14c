"""Service logs: plain text for people, or JSON lines for a log shipper.

Every job log line carries ``job``, ``kind``, ``run_id`` and, where they apply, ``system``,
``tenant`` and ``site`` as separate fields, so an operator can filter one municipality's
jobs without parsing messages. Messages are built from ids, counts and core-package error
messages, which are written to be secret-free; DSNs pass through ``redact_dsn`` first.

Log lines are English in every locale (docs/deployment.md, "The language of logs"): they are
read by programs and searched by their words; what a person reads in Japanese is the commands'
output, the dashboard, the alerts and the reports.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

FIELDS = ("job", "kind", "run_id", "system", "tenant", "site", "seconds", "status", "role")

LogFormat = Literal["text", "json"]


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            doc["error_type"] = record.exc_info[0].__name__
        return json.dumps(doc, ensure_ascii=False)


def _timestamp(record: logging.LogRecord) -> str:
    """A log is for programs too: ISO 8601 with its offset, never the host's local wall clock."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(
            f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None) is not None
        )
        return f"{line} [{extra}]" if extra else line


def configure(fmt: LogFormat = "text", level: int = logging.INFO) -> None:
    """Send bcpctl's and APScheduler's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler logs every execution at INFO; ours carry more context.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Alembic logs its plugin set-up and each step at INFO; dc.schema logs the migrations applied.
    logging.getLogger("alembic").setLevel(logging.WARNING)
