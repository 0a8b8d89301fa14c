"""Pydantic's common validation messages inside config errors reach a Japanese operator in Japanese.

Told apart by pydantic's stable error ``type`` (:mod:`dc.validation`): the English line stays
pydantic's own word for word (tests and scripts match it), the Japanese comes from the catalog
where the CLI prints, and ``--json`` is the same in both languages.
"""

from __future__ import annotations

import copy
import enum
import json
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bcpctl import i18n
from dc.errors import Message
from dc.validation import TEMPLATES, validation_message
from tests.bcpctl.test_i18n import _env
from tests.conftest import Cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"


def _broken(tmp_path: Path, name: str, change: Any) -> Path:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    change(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _port(doc: dict[str, Any]) -> None:
    doc["hosts"][next(iter(doc["hosts"]))]["port"] = "abc"


CASES = [
    ("missing", lambda d: d.pop("consortium"), "consortium", "Field required", "必須の項目がありません"),
    ("extra", lambda d: d.update(bogus_key=1), "bogus_key", "Extra inputs are not permitted", "余分な項目です"),
    ("type", _port, ".port", "Input should be a valid integer, unable to parse string as an integer", "整数で"),
]


@pytest.mark.parametrize(("name", "change", "field", "english", "japanese"), CASES, ids=[c[0] for c in CASES])
def test_config_errors_in_both_languages(
    cli: Cli, tmp_path: Path, name: str, change: Any, field: str, english: str, japanese: str
) -> None:
    path = _broken(tmp_path, name, change)
    for args in (("config", "check", "--config", str(path)), ("drill", "list")):
        env = {"BCPCTL_CONFIG": str(path)}
        shown_en = cli(*args, env=_env(env))
        shown_ja = cli(*args, env=_env({**env, "BCPCTL_LANG": "ja"}))
        assert shown_en.returncode == shown_ja.returncode == 2, shown_ja.stderr
        both = shown_en.stdout + shown_en.stderr
        assert f"{field}: {english}" in both and japanese not in both
        ja = shown_ja.stdout + shown_ja.stderr
        assert japanese in ja and english not in ja, ja
        assert field in ja
    as_json = [
        cli("config", "check", "--config", str(path), "--json", env=_env(lang)) for lang in ({}, {"BCPCTL_LANG": "ja"})
    ]
    assert as_json[0].stdout == as_json[1].stdout and english in json.loads(as_json[0].stdout)["problems"][0]["message"]


class _Colour(enum.Enum):
    RED = "red"


class _Everything(BaseModel):
    """A field for each type of :data:`TEMPLATES`, so each is met as pydantic words it."""

    model_config = ConfigDict(extra="forbid")
    required: int
    text: str = ""
    integer: int = 0
    number: float = 0
    flag: bool = False
    mapping: dict[str, int] = {}
    items: list[int] = []
    choice: Literal["a", "b"] = "a"
    colour: _Colour = _Colour.RED
    gt: int = Field(5, gt=1)
    ge: int = Field(5, ge=1)
    lt: int = Field(5, lt=9)
    le: int = Field(5, le=9)


_BAD = [
    {"extra": 1, "text": 1, "integer": [1], "number": [1], "flag": [1], "mapping": 1, "items": 1},
    {"required": "x", "number": "x", "flag": "maybe", "choice": "c", "colour": "blue"},
    {"required": 1.5, "gt": 1, "ge": 0, "lt": 9, "le": 10},
]


def test_every_marked_type_is_pydantics_own_line_and_has_japanese(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pydantic release that rewords a type leaves it English (never wrong); this names which."""
    met: set[str] = set()
    for data in _BAD:
        with pytest.raises(ValidationError) as raised:
            _Everything.model_validate(data)
        for error in raised.value.errors():
            line = validation_message(error)
            assert line == error["msg"], error
            if error["type"] in TEMPLATES:
                met.add(error["type"])
                assert isinstance(line, Message), f"{error['type']}: pydantic now says {error['msg']!r}"
                monkeypatch.setenv("BCPCTL_LANG", "ja")
                japanese = i18n.error_message(line)
                monkeypatch.delenv("BCPCTL_LANG")
                assert japanese != line and "Input" not in japanese, japanese
                for value in (error.get("ctx") or {}).values():
                    assert str(value) in japanese
    assert met == set(TEMPLATES)
