"""A one-line result on a pipe is written without rich: its import is a tenth of a restore's start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_PROBE = """
import json, sys
import click
from bcpctl.output import Output

with click.Context(click.Command("probe")):
    out = Output(json_mode=False)
    interactive = out.interactive
    out.line({"n": 3, "path": "/tmp/a b"}, lambda d: f"restored {d['n']} files to {d['path']}")
sys.stderr.write(json.dumps({"interactive": interactive, "rich": "rich" in sys.modules}))
"""


def _probe(extra_env: dict[str, str]) -> tuple[str, dict[str, bool]]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_a_piped_one_line_result_is_written_as_it_is_without_loading_rich() -> None:
    stdout, seen = _probe({})
    assert stdout == "restored 3 files to /tmp/a b\n"
    assert seen == {"interactive": False, "rich": False}


@pytest.mark.parametrize("env", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}])
def test_where_the_environment_asks_for_a_terminal_rich_decides(env: dict[str, str]) -> None:
    stdout, seen = _probe(env)
    assert "restored 3 files to /tmp/a b" in stdout
    assert seen == {"interactive": True, "rich": True}


def test_tty_compatible_zero_is_not_a_terminal() -> None:
    _stdout, seen = _probe({"TTY_COMPATIBLE": "0"})
    assert seen["interactive"] is False
