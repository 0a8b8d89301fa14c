"""The CLI's error contract for failures outside bcpctl's own checks."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

from bcpctl.demo import demo_config
from bcpctl.demo.consortium import write_config
from tests.conftest import Cli


def test_an_unreachable_control_database_is_one_line_not_an_internal_error(cli: Cli, tmp_path: Path) -> None:
    raw = demo_config(tmp_path)
    for site in raw["sites"].values():
        site.pop("control_db")  # the demo gives each site its own
    raw["control_db"] = "postgresql://bcp@127.0.0.1:9/control"  # port 9 on loopback: refused
    config = tmp_path / "bcpctl.yaml"
    write_config(config, raw)
    result = cli("export", "list", "--config", str(config))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bcpctl: error: the control database cannot be reached:")
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_every_command_family_is_found_by_its_names() -> None:
    # The root group imports a family only when one of its commands is asked for, by name;
    # the name table must list exactly what the modules build.
    import importlib

    from bcpctl.commands import COMMAND_MODULES

    built: dict[str, set[str]] = {}
    for module in {m for modules in COMMAND_MODULES.values() for m in modules}:
        for command in importlib.import_module(module).COMMANDS:
            built.setdefault(command.name, set()).add(module)
    assert set(built) == set(COMMAND_MODULES)
    for name, modules in built.items():
        assert modules <= set(COMMAND_MODULES[name]), name


def test_a_command_imports_only_its_own_family(cli: Cli, tmp_path: Path) -> None:
    probe = (
        "import sys; from bcpctl.cli import main\n"
        "try:\n    main(['snapshots', '--repo', sys.argv[1], '--json'])\n"
        "except SystemExit:\n    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('bcpctl.commands.'))\n"
        "print(' '.join(loaded), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "no-repo")], env=cli.env, capture_output=True, text=True
    )
    assert done.stderr.strip().splitlines()[-1] == "bcpctl.commands.repo"
    listed = cli("--help")
    assert listed.returncode == 0 and "replicate" in listed.stdout and "snapshots" in listed.stdout


def test_an_error_line_names_hostile_text_escaped_whole_on_one_line(cli: Cli, tmp_path: Path) -> None:
    """Text a user or a snapshot put in an error (a target's name here) can neither rewrite the
    terminal (escape sequences, bidi overrides, C1 controls) nor cut the line short (CR, LF)."""
    repo = str(tmp_path / "repo")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"f")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{src}").returncode == 0
    for name, escaped in [
        ("t\x1b[2J\x1b]0;owned\x07", "t\\x1b[2J\\x1b]0;owned\\x07"),
        ("line\nbreak", "line\\nbreak"),
        ("carriage\rreturn", "carriage\\rreturn"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("全角\u3000空白", "全角\u3000空白"),  # a full-width space is text, kept as it is
    ]:
        target = tmp_path / name
        target.mkdir()
        (target / "x").write_bytes(b"x")
        refused = cli("restore", "latest", "--repo", repo, "--target", str(target))
        assert refused.returncode == 2
        assert refused.stderr.startswith("bcpctl: error: restore target ") and refused.stderr.endswith("\n")
        line = refused.stderr[:-1]
        assert escaped in line and "--overwrite" in line, line
        assert all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") for c in line), line


def test_a_command_started_with_stdout_closed_does_its_work_without_an_internal_error(cli: Cli, tmp_path: Path) -> None:
    """``bcpctl … >&-`` (a cron line, a careless parent): the result has nowhere to go, which is
    no reason to fail the work, and file descriptor 1 must never be handed to the next file
    opened (a restored file, the control database) for a child's "stdout" to write into."""
    repo = str(tmp_path / "repo")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"restored whole")
    assert cli("repo", "init", "--repo", repo).returncode == 0
    assert cli("backup", "run", "--repo", repo, "--source", f"path:{src}").returncode == 0
    for args in (
        ("snapshots", "--json"),
        ("stats", "--json"),
        ("ls", "latest", "--json"),
        ("restore", "latest", "--target", str(tmp_path / "t1")),
        ("restore", "latest", "--target", str(tmp_path / "t2"), "--json"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bcpctl.cli", *args, "--repo", repo],
            env=cli.env,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            preexec_fn=lambda: os.close(1),
        )
        assert (done.returncode, done.stderr) == (0, ""), args
    for target in ("t1", "t2"):
        assert (tmp_path / target / "f").read_bytes() == b"restored whole"
