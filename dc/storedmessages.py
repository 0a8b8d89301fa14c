"""Lines for people kept in stored documents, read back in the reader's language.

A run's warnings, errors, check details and leftovers are :class:`~dc.errors.Message` objects
while the run lasts; stored as JSON (``drill_runs.document``, ``report.json``) they would become
their English line and a Japanese operator would read English in every past report. So a
stored document keeps every value as its English line — what scripts and ``--json`` read stays
the same — and one more key, :data:`MESSAGES_KEY`, maps the JSON Pointer (RFC 6901) of each
such line to its template and parameters::

    {"warnings": ["no PDF report ..."],
     "messages": {"/warnings/0": {"template": "no PDF report (drills.report_pdf): {error}",
                                  "params": {"error": {"template": "...", "params": {...}}}}}}

Reading back (:func:`revive`) puts the Message in place of the line again, so the CLI and the
web render it with the catalog (``bcpctl.i18n.shown``). A document stored before this key
existed, an entry that does not rebuild exactly the stored English line (edited, or made by
another version), or one whose template is anything but plain ``{name}`` fields (a stored
document is input: ``{x.__class__}`` or a huge width would be evaluated by ``str.format``)
leaves the line as stored.
"""

from __future__ import annotations

import json
import string
from typing import Any

from dc.errors import BcpError, Message, Reason, message_of

MESSAGES_KEY = "messages"
#: how deeply messages may nest in parameters (a cause quoted in a refusal quoted in a warning)
MAX_DEPTH = 8
_PLAIN = (str, int, float, bool, type(None))


def encode(value: object, depth: int = 0) -> dict[str, Any] | None:
    """A Message (or a core error) as JSON: ``{"template", "params"}`` (``"english"`` too for a
    :class:`~dc.errors.Reason`, whose English is the OS's or library's own words); else ``None``."""
    if isinstance(value, BcpError):
        value = message_of(value)
    if not isinstance(value, Message) or depth > MAX_DEPTH:
        return None
    params: dict[str, Any] = {}
    for name, param in value.params.items():
        nested = encode(param, depth + 1)
        if nested is not None:
            params[name] = nested
        elif param is None or type(param) in (int, float, bool):
            params[name] = param
        else:
            # what str.format puts in a {name} field for a path, a date or a str subclass
            params[name] = format(param) if not isinstance(param, str) else str(param)
    found: dict[str, Any] = {"template": value.template, "params": params}
    if isinstance(value, Reason):
        found["english"] = str(value)
    return found


def decode(data: object, depth: int = 0) -> Message | None:
    """The Message :func:`encode` wrote, or ``None`` when ``data`` is not one it could have written."""
    if depth > MAX_DEPTH or not isinstance(data, dict):
        return None
    template, raw, english = data.get("template"), data.get("params", {}), data.get("english")
    if not isinstance(template, str) or not isinstance(raw, dict) or not isinstance(english, str | None):
        return None
    params: dict[str, object] = {}
    for name, param in raw.items():
        if isinstance(param, dict):
            param = decode(param, depth + 1)
            if param is None:
                return None
        elif not isinstance(param, _PLAIN):
            return None
        params[str(name)] = param
    if params and not _plain_fields(template, params):
        return None
    try:
        return Reason(english, template, **params) if english is not None else Message(template, **params)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return None


def _plain_fields(template: str, params: dict[str, object]) -> bool:
    """Whether every field of ``template`` is ``{name}`` (``!r``/``!s`` allowed) naming a parameter."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return False
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if not name.isidentifier() or name not in params or spec or conversion not in (None, "r", "s"):
            return False
    return True


def indexed(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as it is stored: its lines unchanged, :data:`MESSAGES_KEY` naming those that are Messages."""
    stored = {k: v for k, v in doc.items() if k != MESSAGES_KEY}
    found: dict[str, Any] = {}
    _collect(stored, "", found)
    if found:
        stored[MESSAGES_KEY] = found
    return stored


def _collect(value: object, pointer: str, found: dict[str, Any]) -> None:
    if isinstance(value, Message):
        encoded = encode(value)
        if encoded is not None:
            found[pointer] = encoded
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(item, f"{pointer}/{_escape(str(key))}", found)
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            _collect(item, f"{pointer}/{position}", found)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def revive(doc: Any) -> Any:
    """A stored document with each line named in :data:`MESSAGES_KEY` a Message again (in place).

    A line is replaced only when its entry rebuilds exactly the stored English: anything else
    (an old document, an edited one, a pointer to nowhere) reads as stored.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get(MESSAGES_KEY), dict):
        return doc
    for pointer, entry in doc[MESSAGES_KEY].items():
        if not isinstance(pointer, str) or not pointer.startswith("/"):
            continue
        tokens = [_unescape(t) for t in pointer[1:].split("/")]
        if tokens[0] == MESSAGES_KEY:
            continue
        parent: Any = doc
        for token in tokens[:-1]:
            parent = _child(parent, token)
        last = tokens[-1]
        current = _child(parent, last)
        if not isinstance(current, str) or isinstance(current, Message):
            continue
        message = decode(entry)
        if message is not None and str(message) == current:
            if isinstance(parent, dict):
                parent[last] = message
            else:
                parent[int(last)] = message
    return doc


def _child(parent: Any, token: str) -> Any:
    if isinstance(parent, dict):
        return parent.get(token)
    if isinstance(parent, list) and token.isdigit() and int(token) < len(parent):
        return parent[int(token)]
    return None


def column_text(value: object) -> str | None:
    """A record's line (a run's error) for its ``error_message`` column: :func:`encode` as JSON,
    ``None`` when the line is plain text (the ``error`` column beside it keeps the English)."""
    encoded = encode(value)
    return None if encoded is None else json.dumps(encoded, ensure_ascii=False)


def from_columns(english: str | None, stored: str | None) -> str | None:
    """A record's line read back: the Message its ``error_message`` column holds when it rebuilds
    ``english`` exactly, else ``english`` as stored (a row written before the column existed)."""
    if english is None or not stored:
        return english
    try:
        message = decode(json.loads(stored))
    except (ValueError, RecursionError):
        return english
    return message if message is not None and str(message) == english else english
