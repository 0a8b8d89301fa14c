"""``bcpctl X --help`` in Japanese under ``BCPCTL_LANG=ja`` / ``ja_JP*``: the whole help and every option."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.bcpctl.test_i18n import JAPANESE, _env
from tests.conftest import Cli

#: renders every command's --help in a fresh interpreter (localizing mutates the command objects)
_WALK = textwrap.dedent(
    """
    import inspect, json, sys
    import click
    from bcpctl import i18n
    from bcpctl.cli import _localized, _register, cli

    _register()
    english = {}

    def remember(group, path):
        for name, command in sorted(group.commands.items()):
            where = (*path, name)
            options = [p.help for p in command.params if isinstance(p, click.Option) and p.help]
            english[where] = (inspect.cleandoc(command.help or ""), options)
            if isinstance(command, click.Group):
                remember(command, where)

    remember(cli, ())
    i18n.setup()
    i18n.localize(cli)
    shown = {}
    for where in english:
        command, ctx = cli, click.Context(cli, info_name="bcpctl")
        for name in where:
            command = _localized(command.get_command(ctx, name))
            ctx = click.Context(command, info_name=name, parent=ctx)
        shown[" ".join(where)] = (command.get_help(ctx), *english[where])
    json.dump(shown, sys.stdout, ensure_ascii=False)
    """
)


def _rendered(env: dict[str, str]) -> dict[str, tuple[str, str, list[str]]]:
    done = subprocess.run([sys.executable, "-c", _WALK], env=env, capture_output=True, text=True, check=True)
    return {k: (v[0], v[1], v[2]) for k, v in json.loads(done.stdout).items()}


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("lang", JAPANESE, ids=["ja_JP", "BCPCTL_LANG"])
def test_every_commands_help_and_options_are_japanese(lang: dict[str, str]) -> None:
    """No paragraph of any command's help, and no option's help, is shown in English."""
    import os

    rendered = _rendered({**os.environ, **_env(lang)})
    assert len(rendered) > 100
    english_left = []
    for where, (help_text, source, options) in rendered.items():
        shown = _words(help_text)
        for paragraph in [p for p in source.split("\n\n") if p.strip()] + options:
            words = _words(paragraph)
            # a whole English sentence left as written (a summary's short English label beside is fine)
            if len(words) > 60 and words[:60] in shown:
                english_left.append(f"bcpctl {where}: {words[:60]}")
        assert any(ord(c) > 0x3000 for c in shown), f"bcpctl {where} --help has no Japanese"
    assert not english_left, "\n".join(english_left)


def test_english_help_is_the_source(cli: Cli) -> None:
    """Without a Japanese locale the help is the docstrings (docs/commands.md renders the same)."""
    shown = cli("forget", "--help", env=_env({}))
    assert shown.returncode == 0
    assert "Remove snapshots that the retention policy does not keep" in shown.stdout
    assert "Keep the N newest snapshots." in shown.stdout
    assert not any(ord(c) > 0x3000 for c in shown.stdout)


@pytest.mark.parametrize("lang", JAPANESE, ids=["ja_JP", "BCPCTL_LANG"])
def test_a_commands_long_help_is_japanese_at_the_cli(cli: Cli, lang: dict[str, str]) -> None:
    shown = cli("forget", "--help", env=_env(lang))
    assert shown.returncode == 0
    text = _words(shown.stdout)
    assert "保持ポリシーで残さないスナップショットをシステムごとに削除します" in text
    assert "postgres-wal のシステムでは、残す最も古いベースバックアップ" in text  # the last paragraph too
    assert "最新の N 個のスナップショットを残します。" in text
    assert "--keep-last" in text  # option names stay as they are
