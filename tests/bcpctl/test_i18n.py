"""The Japanese catalog: complete, compiled, chosen by the locale; exit codes and --json unchanged."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from babel.messages.checkers import checkers
from babel.messages.pofile import read_po

from bcpctl import i18n
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]


def _catalog_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("catalog", ROOT / "scripts/catalog.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["catalog"] = module
    spec.loader.exec_module(module)
    return module


def test_every_message_has_japanese() -> None:
    """A ``_()``/``N_()`` message or a top-level command summary missing from bcpctl.po fails here."""
    tool = _catalog_tool()
    with tool.PO.open("rb") as f:
        po = read_po(f, locale="ja")
    untranslated = []
    for msgid, where in tool.messages().items():
        key = msgid if isinstance(msgid, str) else msgid[0]
        entry = po.get(key)
        strings = (entry.string,) if entry is not None and isinstance(entry.string, str) else (entry and entry.string)
        if entry is None or not strings or not all(strings) or entry.fuzzy:
            untranslated.append(f"{where}: {key!r}")
    assert not untranslated, "run `python scripts/catalog.py update`, translate, compile:\n" + "\n".join(untranslated)
    for message in po:
        for check in checkers:
            check(po, message)  # raises TranslationError on a placeholder the translation drops or adds


def test_shipped_mo_is_compiled_from_the_po() -> None:
    tool = _catalog_tool()
    assert tool.MO.read_bytes() == tool.compiled(), "run `python scripts/catalog.py compile` and commit bcpctl.mo"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LC_ALL": "ja_JP.eucJP", "LANG": "C.UTF-8"}, "ja"),
        ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"BCPCTL_LANG": "ja", "LANG": "C.UTF-8"}, "ja"),
        ({"BCPCTL_LANG": "en", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANGUAGE": "en_US:en", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LANGUAGE": "ja", "LANG": "C.UTF-8"}, "ja"),
        ({}, "en"),
    ],
)
def test_language_follows_bcpctl_lang_then_the_locale(environ: dict[str, str], expected: str) -> None:
    assert i18n.language(environ) == expected


def _env(lang: dict[str, str]) -> dict[str, str]:
    base = {"COLUMNS": "200", "LANG": "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": "", "BCPCTL_LANG": ""}
    return {**base, **lang}


JAPANESE = ({"LANG": "ja_JP.UTF-8"}, {"BCPCTL_LANG": "ja"})


@pytest.mark.parametrize("lang", JAPANESE, ids=["ja_JP", "BCPCTL_LANG"])
def test_help_is_japanese(cli: Cli, lang: dict[str, str]) -> None:
    shown = cli("--help", env=_env(lang))
    assert shown.returncode == 0
    assert "使い方" in shown.stdout and "コマンド / Commands" in shown.stdout
    assert "訓練: 遠隔地で復元・検証" in shown.stdout, "the top-level commands' summaries are translated"
    assert "スクリプト向けに JSON" in shown.stdout
    english = cli("--help", env=_env({"LANG": "ja_JP.UTF-8", "BCPCTL_LANG": "en"}))
    assert "Usage:" in english.stdout and "使い方" not in english.stdout


@pytest.mark.parametrize(
    ("args", "japanese"),
    [
        (("no-such-command",), "コマンド 'no-such-command' はありません"),
        (("drill", "run", "--mode", "bogus"), "必須オプションがありません"),
        (("snapshots", "--no-such-option"), "オプション '--no-such-option' はありません"),
        (("dc", "exec", "--timeout", "x"), "の値が不正です"),
    ],
)
def test_errors_are_japanese_with_the_same_exit_code(cli: Cli, args: tuple[str, ...], japanese: str) -> None:
    english = cli(*args, env=_env({}))
    ja = cli(*args, env=_env({"LANG": "ja_JP.UTF-8"}))
    assert ja.returncode == english.returncode == 2
    assert english.stderr.startswith("bcpctl: error: ") and ja.stderr.startswith("bcpctl: error: ")
    assert japanese in ja.stderr, ja.stderr
    assert len(ja.stderr.splitlines()) == 1


def test_table_headings_are_japanese_and_json_is_not(cli: Cli) -> None:
    ja = cli("drill", "list", env=_env({"BCPCTL_LANG": "ja"}))
    assert ja.returncode == 0, ja.stderr
    assert "種別 / kind" in ja.stdout and "開始 / declared" in ja.stdout
    machine = cli("drill", "list", "--json", env=_env({"BCPCTL_LANG": "ja"}))
    assert machine.stdout.strip() == cli("drill", "list", "--json", env=_env({})).stdout.strip() == "[]"


def test_every_module_that_translates_binds_underscore_to_the_catalog_only() -> None:
    """``_`` as a throwaway variable would shadow the translator: ``_("id")`` would call whatever it holds."""
    import ast

    offenders = []
    for path in sorted((ROOT / "bcpctl").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_" for n in ast.walk(tree)
        )
        if not calls or path.name == "i18n.py":
            continue
        imported = any(
            isinstance(n, ast.ImportFrom) and n.module == "bcpctl.i18n" and any(a.name == "_" for a in n.names)
            for n in tree.body
        )
        stored = [
            n.lineno
            for n in ast.walk(tree)
            if (isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store))
            or (isinstance(n, ast.arg) and n.arg == "_")
        ]
        if not imported or stored:
            offenders.append(f"{path.relative_to(ROOT)}: imported={imported} assigned at {stored}")
    assert not offenders, offenders


@pytest.mark.parametrize(("lang", "verdict"), [("en", "PASSED\n"), ("ja", "PASSED（合格）\n")])
def test_a_runs_last_line_keeps_its_english_verdict_first(
    monkeypatch: pytest.MonkeyPatch, lang: str, verdict: str
) -> None:
    import io

    from rich.console import Console

    from bcpctl.commands.runs import render_run
    from tests.failover.documents import PINNED, document

    monkeypatch.setenv("BCPCTL_LANG", lang)
    doc = {**document(next(iter(PINNED))), "reports": {"html": "/srv/report.html"}}
    buffer = io.StringIO()
    render_run(Console(file=buffer, width=200), doc)
    shown = buffer.getvalue()
    assert shown.endswith(f"drill isolated drill-pinned: {verdict}")
    assert ("報告書 / reports: /srv/report.html" in shown) == (lang == "ja")


def test_english_leaves_the_commands_as_the_reference_renders_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking a command up in English changes nothing: docs/commands.md stays the CLI's own help."""
    from bcpctl.cli import _localized, _register, cli
    from bcpctl.reference import render

    monkeypatch.setenv("BCPCTL_LANG", "en")
    _register()
    before = render()
    for command in list(cli.commands.values()):
        _localized(command)
    assert render() == before
