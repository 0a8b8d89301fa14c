"""The CLI's error contract for failures outside bcpctl's own checks."""

from __future__ import annotations

from pathlib import Path

from bcpctl.demo import demo_config
from bcpctl.demo.consortium import write_config
from tests.conftest import Cli


def test_an_unreachable_control_database_is_one_line_not_an_internal_error(cli: Cli, tmp_path: Path) -> None:
    raw = demo_config(tmp_path)
    raw["control_db"] = "postgresql://bcp@127.0.0.1:9/control"  # port 9 on loopback: refused
    config = tmp_path / "bcpctl.yaml"
    write_config(config, raw)
    result = cli("export", "list", "--config", str(config))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bcpctl: error: the control database cannot be reached:")
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
