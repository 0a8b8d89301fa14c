"""Errors as the web's readers see them: in their language, without the server's internals.

The core's errors carry an English ``N_`` template and its parameters
(:class:`dc.errors.BcpError`); the web translates them where it answers, as the CLI does
where it prints (:func:`bcpctl.i18n.error_message`). Pages are read by partner officials and
operators in Japan: Japanese first, the English line beside it. The JSON API follows the
request's ``Accept-Language`` for ``detail`` and always keeps the English line in
``detail_en``, so a program that matched the English text keeps working.

A partner must never learn where the server keeps its files: a parameter that is a path on
the server (``/srv/…``, ``file:///…``) is shown as ``(server path)`` in both languages, and a
5xx answer (the server's own trouble) says only that, the full line going to the server log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from fastapi import Request

from bcpctl import i18n
from dc.errors import N_, BcpError, Message
from dc.validation import validation_message

log = logging.getLogger("bcpctl.web")

#: the language pages are shown in first (English follows on the page)
PAGE_LANGUAGE = "ja"
HIDDEN_PATH = N_("(server path)")
FIELD_PROBLEM = N_("{field}: {problem}{more}")
UNAVAILABLE = N_("the service cannot answer this right now; the operator finds the reason in the server log")

_TAG = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")
#: an absolute path of at least two segments, or a file URL: where the server keeps things
_SERVER_PATH = re.compile(r"(?:file://)?/[^\s/]+/\S*")


def request_language(request: Request) -> str:
    """``ja`` or ``en`` for the JSON API: the most preferred of the two in ``Accept-Language``
    (RFC 9110 weights; a malformed entry is skipped), English when it names neither."""
    best, weight = "en", 0.0
    for entry in request.headers.get("accept-language", "").split(",")[:20]:
        match = _TAG.match(entry)
        if not match:
            continue
        lang, q = match.group(1).lower(), float(match.group(2) or 1)
        if lang in ("ja", "en") and q > weight:  # strictly: of equal weights the client's first wins
            best, weight = lang, q
    return best


def _hidden(value: object) -> object:
    if isinstance(value, BcpError | Message):
        return public(value)
    if isinstance(value, PurePath) or (isinstance(value, str) and _SERVER_PATH.search(value)):
        return Message(HIDDEN_PATH)
    return value


def public(value: BcpError | Message | str) -> Message:
    """The line to show outside the server: server paths in its parameters hidden (nested too).

    A line without a template (plain text, or an error whose message was replaced after it was
    made) keeps its words with every server path replaced.
    """
    if isinstance(value, BcpError | Message):
        template, params = value.template, value.params
        english = value.message if isinstance(value, BcpError) else str(value)
        if (template.format(**params) if params else template) == english:
            return Message(template, **{k: _hidden(v) for k, v in params.items()})
        value = english
    return Message(_SERVER_PATH.sub(HIDDEN_PATH, value))


def field_problem(error: Mapping[str, Any], more: Message | str = "") -> Message:
    """A pydantic error as ``field: problem``, the problem translatable (:mod:`dc.validation`)."""
    field = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "(body)"
    return Message(FIELD_PROBLEM, field=field, problem=validation_message(error), more=more)


def one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "error"


def unavailable(value: BcpError | Message | str, where: str) -> Message:
    """A 5xx's line: the real one is logged for the operator, the reader gets no internals."""
    log.warning("%s: %s", where, one_line(str(value)))
    return Message(UNAVAILABLE)


def in_language(value: BcpError | Message | str, lang: str) -> tuple[str, str]:
    """``(line in lang, English line)``, each one line, server paths hidden."""
    shown = public(value)
    return one_line(i18n.error_message(shown, lang)), one_line(str(shown))


def on_page(value: BcpError | Message | str) -> str:
    """One line for a page: Japanese, then the English after `` / `` when it differs."""
    japanese, english = in_language(value, PAGE_LANGUAGE)
    return japanese if japanese == english else f"{japanese} / {english}"
