"""The drill commands as operators use them: run, list, report, due, cleanup; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli
from tests.failover.conftest import Built

pytestmark = pytest.mark.postgres


def _runs(cli: Cli) -> list[dict]:  # type: ignore[type-arg]
    listed = cli("drill", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_run_list_report_and_due(example: Built, cli: Cli, tmp_path: Path) -> None:
    config = str(example.config_path)
    human = cli("drill", "run", "--config", config, "--tenant", "goka")
    assert human.returncode == 0, human.stderr
    assert "PASSED" in human.stdout and "goka-kokuho" in human.stdout
    run_id = _runs(cli)[0]["id"]

    ja = cli("drill", "report", run_id[:20], "--format", "ja", "--tenant", "goka", "--config", config)
    assert ja.returncode == 0, ja.stderr
    assert ja.stdout.startswith("訓練実施報告（五霞町）") and "合格" in ja.stdout and "国民健康保険" in ja.stdout
    assert "実施場所: 遠隔地バックアップセンター（北海道）" in ja.stdout
    page = tmp_path / "report.html"
    html = cli("drill", "report", run_id, "--format", "html", "--out", str(page))
    assert html.returncode == 0 and "<svg" in page.read_text(encoding="utf-8")
    doc = json.loads(cli("drill", "report", run_id).stdout)
    assert doc["id"] == run_id and [s["system"] for s in doc["systems"]] == ["goka-juki", "goka-kokuho"]

    due = json.loads(cli("drill", "due", "--config", config, "--json").stdout)
    overdue = {o["system"] for o in due["overdue"]}
    assert "goka-juki" not in overdue and "naka-juki" in overdue and due["blackout"] is None

    swept = cli("drill", "cleanup", "--config", config, "--json")
    assert swept.returncode == 0 and json.loads(swept.stdout) == []


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The real entry point without a subprocess (exit code and stderr as users see them)."""
    from bcpctl.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return int(done.value.code or 0), capsys.readouterr().err


def test_bad_input_exits_2_with_one_line_and_stores_nothing(
    example: Built, cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(example.config_path)
    cases = [
        (("--mode", "chaos"), "unknown drill mode 'chaos'"),
        (("--mode", "point-in-time"), "needs --before"),
        (("--mode", "point-in-time", "--before", "yesterday"), "invalid time 'yesterday'"),
        (("--before", "2026-01-01T00:00"), "only applies to --mode point-in-time"),
        (("--system", "nope"), "unknown system 'nope'"),
        (("--tenant", "nowhere"), "unknown tenant 'nowhere'"),
        (("--mode", "staff-loss"), "give --escrow FILE"),
        (("--timeout", "soon"), "--timeout"),
        (("--site", "mars"), "unknown site 'mars'"),
    ]
    before = len(_runs(cli))
    for args, message in cases:
        code, err = _in_process(capsys, "drill", "run", "--config", config, *args)
        assert code == 2, (args, err)
        assert message in err and err.count("\n") == 1, err
    raw = yaml.safe_load(example.config_path.read_text(encoding="utf-8"))
    del raw["systems"]["naka-kaigo"]["rto"]
    untargeted = tmp_path / "bcpctl.yaml"
    untargeted.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = cli("drill", "run", "--config", str(untargeted), "--tenant", "naka")
    assert result.returncode == 2 and "system 'naka-kaigo' has no rto target" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (
        _in_process(capsys, "drill", "run", "--config", str(untargeted), "--tenant", "goka", "--mode", "readiness")[0]
        == 0
    )
    assert len(_runs(cli)) == before + 1, "only the valid readiness run was recorded"
    code, err = _in_process(capsys, "drill", "report", "no-such-run")
    assert code == 2 and "no run 'no-such-run'" in err


def test_point_in_time_offers_the_last_known_good_snapshot(example: Built, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from dc.state import backup_runs, open_state

    config = str(example.config_path)
    good = "5a" * 32
    with open_state(None).begin() as conn:
        conn.execute(
            insert(backup_runs).values(
                system="goka-juki", repository="file:///r", source="postgres:x", snapshot_id="6b" * 32,
                started_at=datetime.now(UTC), ok=True, anomaly="compressibility 0.99 > 0.40", last_known_good=good,
            )
        )  # fmt: skip
    cases = [
        (("--system", "goka-juki"), "or --last-known-good (goka-juki looked mass-encrypted"),
        (("--system", "goka-juki", "--last-known-good", "--before", "2026-01-01T00:00"), "not both"),
        (("--system", "naka-juki", "--last-known-good"), "no anomaly with a last known good snapshot"),
    ]
    for args, message in cases:
        code, err = _in_process(capsys, "drill", "run", "--config", config, "--mode", "point-in-time", *args)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
    assert good[:8] in _in_process(capsys, "drill", "run", "--config", config, "--mode", "point-in-time",
                                   "--system", "goka-juki")[1]  # fmt: skip
    code, err = _in_process(capsys, "drill", "run", "--config", config, "--last-known-good")
    assert code == 2 and "only applies to --mode point-in-time" in err
