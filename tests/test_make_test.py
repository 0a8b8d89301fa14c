"""`make test` runs mypy and both pytest parts; any of them failing fails the target.

The recipe is run with stand-ins for mypy and python (a BIN of scripts that log their call
and exit as told), so this checks the recipe's logic in a second, not the suite itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  mypy*) exit "${MYPY_RC:-0}" ;;
  *"not serial"*) exit "${PYTEST_RC:-0}" ;;
  *) exit "${SERIAL_RC:-0}" ;;
esac
"""


def _make_test(tmp_path: Path, **exit_codes: int) -> tuple[int, list[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("mypy", "python"):
        script = bin_dir / name
        script.write_text(_FAKE)
        script.chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "CALLS": str(calls), **{k: str(v) for k, v in exit_codes.items()}}
    # -o: the venv and the Debian packages count as present; only the recipe itself runs.
    proc = subprocess.run(
        ["make", "-s", "-o", "system-deps", "-o", ".venv/.installed-stamp", f"BIN={bin_dir}", "test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, calls.read_text().splitlines(), proc.stderr


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def test_every_part_runs_and_passes(tmp_path: Path) -> None:
    code, calls, _ = _make_test(tmp_path)
    assert code == 0
    assert [c.split()[0] for c in calls] == ["mypy", "python", "python"]
    assert "not serial" in calls[1] and "-m serial" in calls[2]


def test_the_serial_part_collects_only_the_files_that_use_the_mark(tmp_path: Path) -> None:
    """Collecting the whole tree again for the capacity tests alone costs ~15 s of CPU: the serial
    part names the files; every file that marks a test serial is among them, and only those."""
    _code, calls, _ = _make_test(tmp_path)
    named = {arg for arg in calls[2].split() if arg.endswith(".py")}
    marked = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if re.search(r"mark\.serial\b", p.read_text(encoding="utf-8"))
    }
    assert "tests/monitoring/test_load.py" in marked
    assert named == marked


@pytest.mark.parametrize(
    ("failing", "named"),
    [
        ({"MYPY_RC": 1}, "mypy"),
        ({"PYTEST_RC": 1}, "pytest"),
        ({"PYTEST_RC": 5}, "pytest"),  # no test collected is a failure too
        ({"SERIAL_RC": 1}, "pytest-serial"),
    ],
    ids=["mypy", "pytest", "pytest-no-tests", "pytest-serial"],
)
def test_a_failing_part_fails_the_target_and_the_others_still_run(
    tmp_path: Path, failing: dict[str, int], named: str
) -> None:
    code, calls, stderr = _make_test(tmp_path, **failing)
    assert code != 0
    assert len(calls) == 3, "a failure must not skip the parts after it"
    assert f"failed: {named}" in stderr
