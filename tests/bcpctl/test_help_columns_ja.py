"""Japanese ``--help``: every option's description starts at the same display column.

A full-width character takes two columns on a terminal; click counts one per character, so a
translated metavar (``--since 時刻``) pushed its description right. The class under test: every
option line of every command's help, rendered through the context each command makes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import unicodedata

from tests.bcpctl.test_i18n import _env
from tests.conftest import Cli

#: renders every command's --help in a fresh interpreter (localizing mutates the command objects),
#: each through the context class its command makes (as ``bcpctl X --help`` does)
_WALK = textwrap.dedent(
    """
    import json, sys
    import click
    from bcpctl import i18n
    from bcpctl.cli import _localized, _register, cli

    _register()
    i18n.setup()
    i18n.localize(cli)
    shown = {}

    def walk(group, ctx, path):
        for name in sorted(group.commands):
            command = _localized(group.get_command(ctx, name))
            sub = command.context_class(command, info_name=name, parent=ctx)
            shown[" ".join((*path, name))] = command.get_help(sub)
            if isinstance(command, click.Group):
                walk(command, sub, (*path, name))

    walk(cli, cli.context_class(cli, info_name="bcpctl"), ())
    json.dump(shown, sys.stdout, ensure_ascii=False)
    """
)

_OPTION = re.compile(r"^(  -\S.*?)( {2,})(\S.*)$")


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _columns(help_text: str) -> dict[int, list[str]]:
    """Description column -> the option lines whose description starts there."""
    found: dict[int, list[str]] = {}
    for line in help_text.splitlines():
        match = _OPTION.match(line)
        if match:
            found.setdefault(_cells(match.group(1) + match.group(2)), []).append(line)
    return found


def test_every_commands_option_descriptions_share_one_column() -> None:
    env = _env({"BCPCTL_LANG": "ja"})
    done = subprocess.run([sys.executable, "-c", _WALK], env=env, capture_output=True, text=True, check=True)
    helps = json.loads(done.stdout)
    assert len(helps) > 50 and any(re.search(r"[^\x00-\x7f]", h) for h in helps.values())
    misaligned = {name: cols for name, text in helps.items() if len(cols := _columns(text)) > 1}
    assert not misaligned, json.dumps(misaligned, ensure_ascii=False, indent=1)[:3000]
    for name, text in helps.items():
        # within the 100 columns bcpctl's help is laid out for; a single unbreakable word may pass them
        too_wide = [line for line in text.splitlines() if _cells(line) > 100 and len(line.split()) > 1]
        assert not too_wide, (name, too_wide)


def test_the_cli_aligns_japanese_help(cli: Cli) -> None:
    """The real entry point: ``bcpctl snapshots --help`` with a Japanese metavar among its options."""
    shown = cli("snapshots", "--help", env=_env({"BCPCTL_LANG": "ja"}))
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"[^\x00-\x7f]", shown.stdout), shown.stdout
    assert len(_columns(shown.stdout)) == 1, shown.stdout
