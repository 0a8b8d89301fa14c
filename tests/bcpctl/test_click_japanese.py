"""click's own words under ``BCPCTL_LANG=ja``: its messages, the help's metavars and marks.

click marks its texts for gettext and bcpctl's catalog carries them (bcpctl.i18n.CLICK_MESSAGES),
but click also shows the English names of its types (``--mode TEXT``), an option's own
``metavar=`` (``--config FILE``), ``[required]`` and the usage line's ``[OPTIONS]``. The class
under test: every message in click's source (a click upgrade that adds one fails here), and the
metavar of every option of every command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from babel.messages.extract import extract_from_dir

from bcpctl import i18n
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli

#: click's messages no user input reaches: a command defined wrongly, a platform bcpctl does not
#: run on, a feature bcpctl does not use (colours, editors, shell completion)
NEVER_SHOWN = {
    "d",  # a format letter of click's progress bar
    "{editor}: Editing failed",
    "{editor}: Editing failed: {e}",
    "Windows error: {error}",
    "Name '{name}' defined twice",
    "Boolean option {decl!r} cannot use the same flag for true/false.",
    "Could not determine name for option with declarations {decls!r}",
    "No options defined but a name was passed ({name}). Did you mean to declare an argument instead? "
    "Did you mean to pass '--{name}'?",
    "Arguments take exactly one parameter declaration, got {length}: {decls}.",
    "Invalid start character for option ({option})",
    "Shell completion is not supported for Bash versions older than 4.4.",
    "Couldn't detect Bash version, shell completion is not supported.",
    "Unknown color {colour!r}",
    "Unknown standard stream '{name}'",
    "Choice({choices})",  # a repr, for programmers
}

#: placeholders that are codes or formats, the same in both languages
CODES = {"URL", "DSN", "LSN", "ID", "UUID", "YYYY", "MM", "DD", "OID", "unlimited"}


def _click_messages() -> list[str]:
    found = []
    for _f, _l, message, _c, _x in extract_from_dir(
        os.path.dirname(click.__file__), method_map=[("**.py", "python")], keywords={"_": None, "ngettext": (1, 2)}
    ):
        found.append(message if isinstance(message, str) else message[0])
    return sorted(set(found))


def test_every_click_message_has_japanese() -> None:
    catalog = i18n._catalog("ja")
    messages = _click_messages()
    assert len(messages) > 60
    missing = [m for m in messages if m not in NEVER_SHOWN and catalog.gettext(m) == m]
    assert not missing, "add to bcpctl.i18n.CLICK_MESSAGES or catalog.py CLICK_PLURALS:\n" + "\n".join(missing)
    assert set(messages) >= NEVER_SHOWN, "an entry of NEVER_SHOWN is gone from click: drop it"


#: every option's metavar as the help shows it, in a fresh interpreter (localizing mutates commands)
_WALK = textwrap.dedent(
    """
    import json, sys
    import click
    from bcpctl import i18n
    from bcpctl.cli import _localized, _register, cli

    i18n.setup()
    _register()
    _localized(cli)
    shown = {}

    def walk(command, path):
        ctx = click.Context(command, info_name=" ".join(path))
        metavars = [
            (p.opts[0], p.make_metavar(ctx))
            for p in command.params
            if isinstance(p, click.Option) and not p.is_flag and not isinstance(p.type, click.Choice)
        ]
        shown[" ".join(path)] = {"metavars": metavars, "usage": command.get_usage(ctx), "help": command.get_help(ctx)}
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(cli, ["bcpctl"])
    json.dump(shown, sys.stdout, ensure_ascii=False)
    """
)


def _walked(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", _WALK], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_every_metavar_and_mark_of_every_help_is_japanese() -> None:
    walked = _walked({**os.environ, **_env({"BCPCTL_LANG": "ja"})})
    assert len(walked) > 100
    english = []
    for where, shown in walked.items():
        for option, metavar in shown["metavars"]:
            words = [w for w in re.findall(r"[A-Za-z]{2,}", metavar) if w not in CODES]
            if words:
                english.append(f"{where} {option} {metavar}")
        for mark in ("[OPTIONS]", "COMMAND [ARGS]", "[required]"):
            if mark in shown["usage"] or mark in shown["help"]:
                english.append(f"{where}: {mark}")
    assert not english, "\n".join(english)


def test_english_help_keeps_clicks_words() -> None:
    walked = _walked({**os.environ, **_env({})})
    drill = walked["bcpctl drill run"]
    assert ["--mode", "TEXT"] in drill["metavars"] and ["--config", "FILE"] in drill["metavars"]
    assert "[OPTIONS]" in drill["usage"] and "[required]" in drill["help"]


@pytest.mark.parametrize(
    "args",
    [
        ("drill", "list", "--kind", "x"),  # a choice
        ("drill", "list", "--json=1"),  # a flag given a value
        ("drill", "list", "--kind"),  # an option without its value
        ("drill", "run", "--help"),
        ("backup", "--help"),
    ],
    ids=["choice", "flag-value", "missing-value", "help", "group-help"],
)
def test_clicks_words_read_japanese_at_the_cli(cli: Cli, args: tuple[str, ...], tmp_path: Path) -> None:
    english = cli(*args, env=_env({}))
    japanese = cli(*args, env=_env({"BCPCTL_LANG": "ja"}))
    assert english.returncode == japanese.returncode
    shown = japanese.stdout if args[-1] == "--help" else japanese.stderr.removeprefix("bcpctl: error: ")
    for word in ("TEXT", "FILE", "OPTIONS", "COMMAND", "required", "not one of", "does not take", "requires"):
        assert word not in shown, (word, shown[:600])
    if args[-1] != "--help":
        assert english_words(shown, "--kind", "--json", "'drill'", "'failover'", "'failback'", "'x'") == [], shown
