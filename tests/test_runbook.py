"""The runbooks and the alerts that point into them.

docs/runbook.ja.md (Japanese, printable, one command per step) and docs/runbook.md carry the
same sections under the same anchors; every alert rule has Japanese and English text and a
``runbook_url`` whose anchor exists in both; every bcpctl command the Japanese runbook tells
an operator to type exists, with the options it names.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JA = ROOT / "docs/runbook.ja.md"
EN = ROOT / "docs/runbook.md"
RULES = ROOT / "monitoring/rules/bcpctl.rules.yml"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
#: a line of a code block the operator types
COMMAND = re.compile(r"^ {4,}((?:[A-Z_]+=\S+ )*(?:bcpctl|sudo|export|read|unset|systemctl)\b.*)$")


def _anchors(path: Path) -> list[str]:
    return re.findall(r'^<a id="([^"]+)"></a>$', path.read_text(encoding="utf-8"), re.M)


def _rules() -> list[dict]:  # type: ignore[type-arg]
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_japanese_and_english_runbooks_have_the_same_sections() -> None:
    ja, en = _anchors(JA), _anchors(EN)
    assert ja == en, f"only in Japanese: {set(ja) - set(en)}; only in English: {set(en) - set(ja)}"
    assert len(ja) == len(set(ja)), "an anchor is used twice"
    for path in (JA, EN):
        text = path.read_text(encoding="utf-8")
        for anchor in ja:  # every anchor is followed by its heading
            assert re.search(rf'<a id="{anchor}"></a>\n\n#+ \S', text), f"{path.name}: {anchor}"


def test_every_alert_is_bilingual_and_links_its_runbook_section() -> None:
    anchors_ja, anchors_en = set(_anchors(JA)), set(_anchors(EN))
    for rule in _rules():
        name, notes = rule["alert"], rule["annotations"]
        for key in ("summary", "description"):
            ja, sep, en = notes[key].partition(" / ")
            assert sep and JAPANESE.search(ja) and re.search(r"[A-Za-z]{3}", en), f"{name} {key}: {notes[key]!r}"
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "/runbook/ja" and anchor == f"alert-{name.lower()}", name
        assert anchor in anchors_ja and anchor in anchors_en, f"{name}: no section #{anchor}"


def _commands(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [m.group(1) for line in lines if (m := COMMAND.match(line))]


def test_one_command_per_step() -> None:
    """Printable: each code block of the Japanese runbook holds exactly one command to type."""
    lines = JA.read_text(encoding="utf-8").splitlines()
    for i in range(1, len(lines)):
        if COMMAND.match(lines[i]):
            assert not COMMAND.match(lines[i - 1]), f"runbook.ja.md:{i + 1}: two commands in one step"
            assert not lines[i].rstrip().endswith("\\"), f"runbook.ja.md:{i + 1}: a continued command"


def _resolve(tokens: list[str]) -> tuple[click.Command, list[str]]:
    from bcpctl.cli import _register, cli

    _register()
    command: click.Command = cli
    rest = tokens
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"no command {' '.join(tokens[: len(tokens) - len(rest) + 1])}"
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("line", _commands(JA), ids=lambda s: s[:60])
def test_every_bcpctl_command_of_the_japanese_runbook_exists(line: str) -> None:
    tokens = shlex.split(line)
    while tokens and re.match(r"^[A-Z_]+=", tokens[0]):
        tokens = tokens[1:]
    if tokens[0] != "bcpctl":
        return
    command, rest = _resolve(tokens[1:])
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help", "-h"}
    for token in rest:
        if token.startswith("-") and not token.startswith("---"):
            assert token.split("=", 1)[0] in known, f"{command.name}: no option {token}"
