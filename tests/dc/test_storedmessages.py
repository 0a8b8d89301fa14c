"""Stored lines for people come back as the Messages they were, and a stored document is input:
nothing in it can make rendering evaluate more than ``{name}`` fields or change what is shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcpctl.i18n import shown
from dc.errors import N_, Message, ProblemFound, Reason, os_reason
from dc.storedmessages import MESSAGES_KEY, column_text, from_columns, indexed, revive

#: catalog templates with a Japanese translation, nested as a run's lines nest
WARNING = N_("no PDF report (drills.report_pdf): {error}")
PROBLEM = N_("{name}: {reason}")


def _stored(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` written and read as the control database and report.json do."""
    return revive(json.loads(json.dumps(indexed(doc), ensure_ascii=False, default=str)))


def _run(warning: Message, error: Message) -> dict[str, Any]:
    return {
        "id": "drill-x",
        "warnings": [warning, "a plain line"],
        "systems": [{"system": "goka/juki~1", "error": error}],
        "lost": {"a/b": {"warnings": [warning]}},
    }


def test_a_run_reads_back_in_japanese_and_english_as_it_was_made() -> None:
    missing = OSError(2, "No such file or directory")
    error = Message(
        PROBLEM,
        name="goka-juki",
        reason=ProblemFound(N_("cannot open {path}: {reason}"), path=Path("/srv/r"), reason=os_reason(missing)),
    )
    warning = Message(WARNING, error=ProblemFound(N_("Chromium is not installed")))
    back = _stored(_run(warning, error))
    for line, made in (
        (back["warnings"][0], warning),
        (back["systems"][0]["error"], error),
        (back["lost"]["a/b"]["warnings"][0], warning),
    ):
        assert isinstance(line, Message) and line == made
        assert shown(line, "en") == str(made) and shown(line, "ja") == shown(made, "ja") != str(made)
    assert type(back["warnings"][1]) is str
    # the machine form: the English line where it always was, the templates beside it
    stored = json.loads(json.dumps(indexed(_run(warning, error)), default=str))
    assert stored["warnings"][0] == str(warning) and stored[MESSAGES_KEY]["/warnings/0"]["template"] == WARNING
    assert "/lost/a~1b/warnings/0" in stored[MESSAGES_KEY] and "/systems/0/error" in stored[MESSAGES_KEY]


def test_an_old_document_and_an_old_row_read_as_stored() -> None:
    old = {"id": "drill-old", "warnings": ["report files not written: Permission denied (/x)"], "error": None}
    assert revive(json.loads(json.dumps(old))) == old
    assert type(revive(json.loads(json.dumps(old)))["warnings"][0]) is str
    assert from_columns("its process stopped", None) == "its process stopped"
    assert from_columns(None, None) is None
    assert from_columns("edited by hand", column_text(Message(N_("cleanup did not finish")))) == "edited by hand"
    assert from_columns("cleanup did not finish", "{not json") == "cleanup did not finish"


TEXT = st.text(alphabet=st.sampled_from(list("{}!:<>&\"'/ab0%~\u3042")), max_size=12)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(name=TEXT, reason=TEXT)
def test_parameters_with_braces_format_specs_or_markup_round_trip_exactly(name: str, reason: str) -> None:
    error = Message(PROBLEM, name=name, reason=Reason(reason or "x", N_("Permission denied")))
    back = _stored({"systems": [{"error": error}], "warnings": [Message(WARNING, error=name)]})
    assert back["systems"][0]["error"] == error and isinstance(back["systems"][0]["error"], Message)
    assert shown(back["warnings"][0], "ja").endswith(name) and name in shown(back["systems"][0]["error"], "ja")


@pytest.mark.parametrize(
    "entry",
    [
        {"template": "{x.__class__.__mro__}", "params": {"x": "a"}},  # attribute access
        {"template": "{x[0]}", "params": {"x": "a"}},
        {"template": "{x:>999999999}", "params": {"x": "a"}},  # a width that would fill the memory
        {"template": "{0}", "params": {"x": "a"}},
        {"template": "{x", "params": {"x": "a"}},
        {"template": "{y}", "params": {"x": "a"}},
        {"template": "{x}", "params": {"x": ["a"]}},
        {"template": "{x}", "params": {"x": {"template": "{z.real}", "params": {"z": 1}}}},
        {"template": "{x}", "params": "x=a"},
        {"template": 7, "params": {}},
        {"template": "shown instead", "params": {}},  # does not rebuild the stored English
        "a",
    ],
)
def test_a_tampered_entry_leaves_the_stored_line(entry: object) -> None:
    doc = {"warnings": ["a"], MESSAGES_KEY: {"/warnings/0": entry, "/nowhere/3": entry, "/warnings/9": entry}}
    back = revive(json.loads(json.dumps(doc)))
    assert back["warnings"] == ["a"] and type(back["warnings"][0]) is str


def test_the_messages_key_itself_and_a_foreign_one_are_never_rewritten() -> None:
    doc = {"warnings": ["a"], MESSAGES_KEY: {"/messages": {"template": "a", "params": {}}}}
    assert revive(json.loads(json.dumps(doc)))[MESSAGES_KEY] == doc[MESSAGES_KEY]
    assert revive({"warnings": ["a"], MESSAGES_KEY: ["nonsense"]})["warnings"] == ["a"]
    assert revive(["not", "a", "document"]) == ["not", "a", "document"]
