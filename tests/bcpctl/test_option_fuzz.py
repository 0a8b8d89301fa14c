"""Every numeric and pattern option of every command, given out-of-range and hostile values.

The commands and options come from click itself (the same walk as docs/commands.md), so an
option added tomorrow is fuzzed tomorrow. Each value goes through the real CLI entry point
(in process: argv may then hold NUL bytes, which no subprocess can carry) with a small real
repository as --repo. A value must be refused with exit 2 and one line naming the option —
no "internal error", no traceback, no repository object changed — unless it is listed in
ACCEPTED with the reason it makes sense; those run for real where that is safe.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import click
import pytest

from backup.opening import init_repository, open_repository
from backup.run import BackupRequest, run_backup
from backup.sources import parse_source
from bcpctl.params import Checked, Count, Duration, Pattern
from bcpctl.reference import _walk
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD

NUMERIC_TYPES = (click.types.IntParamType, click.types.FloatParamType, Count, Duration)
PARSED_TYPES = (Checked, click.DateTime)

#: out of range or hostile for any number, count or duration
NUMBERS = ["-1", "-5", "0", "1" + "0" * 30, "9" * 5000, "1e400", "nan", "NaN", "inf", "-inf", "", " ", "abc", "1\x00"]
#: hostile for any glob or host pattern (anything else is a legitimate pattern)
PATTERNS = ["", " ", "\x00", "a\x00b", "a\nb", "\x1b[2J", "x" * 5000]
#: hostile for text a command parses (a time, a period, a subset, a rate)
PARSED = [*PATTERNS, "-1", "0", "nan", "inf", "1" + "0" * 30, "0/0", "5/3", "-1/2", "9999-12", "abc"]

#: (command, option, value) that is accepted on purpose, and why it is sensible
ACCEPTED: dict[tuple[str, str, str], str] = {
    ("forget", "--keep-last", "0"): "rule not used (an all-zero policy is refused when it runs)",
    ("forget", "--keep-hourly", "0"): "rule not used",
    ("forget", "--keep-daily", "0"): "rule not used",
    ("forget", "--keep-weekly", "0"): "rule not used",
    ("forget", "--keep-monthly", "0"): "rule not used",
    ("forget", "--keep-yearly", "0"): "rule not used",
    ("forget", "--grace", "0"): "explicitly no grace period",
    ("prune", "--grace", "0"): "explicitly no grace period",
    ("prune", "--max-unused", "0"): "repack every pack holding any unused blob",
    ("registry seed", "--seed", "0"): "the default seed",
    ("replicate", "--object-lock-days", "0"): "no Object Lock retention",
    ("replicate", "--delete-delay", "0"): "delete at once what the source deleted",
    ("verify-offsite", "--delete-delay", "0"): "an offsite that deletes at once keeps nothing retention removed",
    ("serve", "--stop-timeout", "0"): "cancel running jobs at once on SIGTERM",
    ("serve", "--metrics-refresh", "0"): "render /metrics at each scrape",
    ("wal push", "--ahead", "0"): "archive only the segment PostgreSQL asked for",
    ("wal push", "--wait", "0"): "do not wait for a push-daemon's record: push at once when it has none",
    ("wal get", "--prefetch", "0"): "fetch only the segment PostgreSQL asked for",
}
#: commands safe to run for real on the test repository when a value is accepted
RUN_FOR_REAL = {"forget", "prune"}

#: a plain-text option with one of these metavars or names is numeric or a pattern in disguise:
#: it must use a type from bcpctl.params (or click's ranges) so that this test fuzzes it
SUSPICIOUS_METAVARS = {"DURATION", "SECONDS", "N/M", "PATTERN", "BYTES/S", "YYYY-MM", "TIME", "N", "DAYS"}
SUSPICIOUS_NAMES = re.compile(
    r"timeout|grace|within|delay|ttl|rate|subset|exclude|include|period|scale|seed|days|keep|jobs|workers|before|_at$"
)


def _commands() -> list[tuple[str, click.Command]]:
    from bcpctl.cli import _register, cli

    _register()
    return [(" ".join(path), cmd) for path, cmd in _walk(cli, []) if not isinstance(cmd, click.Group)]


def _fuzzed_options() -> list[tuple[str, str, str]]:
    cases = []
    for name, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag:
                continue
            option = max(param.opts, key=len)
            if isinstance(param.type, NUMERIC_TYPES):
                cases += [(name, option, value) for value in NUMBERS]
            elif isinstance(param.type, Pattern):
                cases += [(name, option, value) for value in PATTERNS]
            elif isinstance(param.type, PARSED_TYPES):
                cases += [(name, option, value) for value in PARSED]
    return cases


CASES = _fuzzed_options()


def test_the_walk_finds_the_options_that_matter() -> None:
    options = {(c, o) for c, o, _ in CASES}
    for expected in [
        ("forget", "--keep-daily"),
        ("forget", "--keep-within"),
        ("forget", "--grace"),
        ("prune", "--max-unused"),
        ("check", "--subset"),
        ("backup run", "--exclude"),
        ("serve", "--lease-ttl"),
        ("replicate", "--limit-rate"),
        ("drill run", "--timeout"),
    ]:
        assert expected in options, expected


def test_no_numeric_or_pattern_option_hides_as_plain_text() -> None:
    untyped = []
    for name, command in _commands():
        for param in command.params:
            if (
                not isinstance(param, click.Option)
                or param.is_flag
                or type(param.type) is not click.types.StringParamType
            ):
                continue
            if (param.metavar or "").upper() in SUSPICIOUS_METAVARS or SUSPICIOUS_NAMES.search(param.name or ""):
                untyped.append(f"{name} {max(param.opts, key=len)}")
    assert untyped == [], "give these options a type from bcpctl.params so that bad values stop at parse time"


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    repo = root / "repo"
    init_repository(LocalBackend(repo, create=True), PASSWORD, kdf=FAST_KDF)
    src = root / "src"
    src.mkdir()
    (src / "a.txt").write_text("resident list\n")
    with open_repository(LocalBackend(repo), PASSWORD) as r:
        for system in ("goka-juki", "naka-tax"):
            run_backup(r, BackupRequest(parse_source(f"path:{src}"), system=system))
    return repo


def _digest(repo: Path) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file()
    }


def _argv(command: str, option: str, value: str, repo: Path, cmd: click.Command) -> list[str]:
    argv = [*command.split(), f"{option}={value}"]
    if any(p.name == "repo_url" for p in cmd.params):
        argv += ["--repo", str(repo)]
    return argv


def _parses(cmd: click.Command, option: str, value: str) -> bool:
    """Whether click accepts the value (errors about other, missing parameters mean it did)."""
    from dc.errors import BcpError

    param = next(p for p in cmd.params if option in getattr(p, "opts", ()))
    try:
        with cmd.make_context("bcpctl", [f"{option}={value}"], resilient_parsing=False):
            pass
    except click.BadParameter as exc:
        return exc.param is not None and exc.param.name != param.name
    except click.ClickException:
        return True  # a missing required parameter: ours was fine
    except BcpError:
        return False  # a validating callback of ours refused it
    return True


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from bcpctl.cli import _main

    with pytest.raises(SystemExit) as exited:
        _main(argv)
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out, out.err


@pytest.mark.parametrize(("command", "option", "value"), CASES, ids=[f"{c}|{o}|{v[:12]!r}" for c, o, v in CASES])
def test_hostile_option_values(
    command: str, option: str, value: str, small_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmd = dict(_commands())[command]
    before = _digest(small_repo)
    if _parses(cmd, option, value):
        reason = ACCEPTED.get((command, option, value))
        assert reason, f"{command} {option}={value!r} is accepted: refuse it, or list it in ACCEPTED with a reason"
        if command in RUN_FOR_REAL:
            code, _out, err = _run(_argv(command, option, value, small_repo, cmd), capsys)
            assert code in (0, 2), err
            assert "internal error" not in err and "Traceback" not in err
        return
    code, out, err = _run(_argv(command, option, value, small_repo, cmd), capsys)
    assert code == 2, (command, option, value, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bcpctl: error: "), err
    assert option in lines[0], f"the error must name {option}: {lines[0]}"
    assert "internal error" not in err and "Traceback" not in err
    assert out == ""
    assert _digest(small_repo) == before
