"""Pydantic's validation messages as :class:`~dc.errors.Message`, so they reach readers in their language.

Pydantic words its errors in English only; what stays stable across its releases is each
error's ``type`` code and ``ctx`` (its public API). The common types get a marked template
here, and the line is kept only when it is, word for word, the one pydantic wrote — so the
English every test and script sees never changes, and a type pydantic words differently in a
later release simply stays English rather than becoming wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dc.errors import N_, Message

#: pydantic error ``type`` -> its message as an ``N_`` template over the error's ``ctx``
TEMPLATES = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "dict_type": N_("Input should be a valid dictionary"),
    "list_type": N_("Input should be a valid list"),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
}

#: the prefix pydantic puts before a validator's own ValueError text
VALUE_ERROR = "Value error, "


def validation_message(error: Mapping[str, Any]) -> str:
    """One pydantic error's message for people: a :class:`Message` for the common types, else its text.

    A validator's own ``ValueError`` loses pydantic's ``Value error,`` prefix.
    """
    text = str(error.get("msg", "invalid")).removeprefix(VALUE_ERROR)
    template = TEMPLATES.get(str(error.get("type", "")))
    if template is None:
        return text
    params = {k: v for k, v in (error.get("ctx") or {}).items() if f"{{{k}}}" in template}
    try:
        line = Message(template, **params)
    except (KeyError, IndexError, ValueError):
        return text
    return line if line == text else text
