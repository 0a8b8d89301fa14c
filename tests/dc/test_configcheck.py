"""Every problem of a configuration at once, each with the line of the file that holds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dc.config import load_config
from dc.configcheck import Problem, check_config
from dc.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"

#: single changes to the example, each one problem that every command refuses
MUTATIONS: list[Callable[[dict[str, Any]], object]] = [
    lambda c: c["systems"]["goka-juki"].update(rpo="fifteen"),
    lambda c: c["systems"]["goka-juki"].update(tier=0),
    lambda c: c["systems"]["goka-juki"].update(depends_on=["ghost"]),
    lambda c: c["systems"]["goka-juki"]["source"].update(kind="tape"),
    lambda c: c["systems"]["goka-juki"]["source"].pop("path"),
    lambda c: c["tenants"]["goka"].update(lg_code=85421),
    lambda c: c["tenants"]["goka"].update(mayor="someone"),
    lambda c: c["tenants"].update({"Goka Town": c["tenants"]["goka"]}),
    lambda c: c["hosts"]["hv01"].update(tenants=["goka", "atlantis"]),
    lambda c: c["hosts"]["hv01"].pop("address"),
    lambda c: c["partners"]["tsukuba"].update(age_recipient="age1short"),
    lambda c: c["sites"]["offsite"].update(role="primary"),
    lambda c: c.update(control_db="postgresql://bcp:pw@127.0.0.1/control"),
]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_the_check_finds_what_load_config_refuses_at_a_line_of_that_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object]
) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "bcpctl.yaml"
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    report = check_config(path)
    assert len(report.problems) == 1, report.problems
    (problem,) = report.problems
    assert str(refused.value) == f"{path}: {problem.field}: {problem.message}"
    assert problem.line is not None
    # the line names the field, or (for a missing field or a bad name) the entry that holds it
    assert problem.field.split(".")[-1] in text.splitlines()[problem.line - 1] or problem.message == "Field required"


def test_a_yaml_syntax_error_is_one_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bcpctl.yaml"
    path.write_text("consortium: x\nsites:\n  primary: {prefecture: a\n", encoding="utf-8")
    report = check_config(path)
    assert len(report.problems) == 1 and report.problems[0].line == 4 and report.problems[0].field == ""


def test_a_top_level_that_is_not_a_mapping_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "bcpctl.yaml"
    path.write_text("- consortium\n", encoding="utf-8")
    assert check_config(path).problems == [Problem(1, "", "expected a mapping at the top level")]


def test_a_valid_file_counts_what_it_declares() -> None:
    report = check_config(EXAMPLE)
    assert report.ok and report.counts == {"sites": 2, "tenants": 4, "systems": 168, "hosts": 6, "partners": 1}


def test_a_missing_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not found"):
        check_config("/nonexistent/bcpctl.yaml")
