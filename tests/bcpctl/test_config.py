"""``bcpctl config check``: every problem at once with its line and field; exit 2 when any."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dc.yamllines import load_located
from tests.conftest import Cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"

#: seven different problems, each marked on its line with "# <field>"
SEVEN = """\
consortium: test-kikan
sites:
  primary: {prefecture: 茨城県, repository: "file:///r"}
tenants:
  goka:
    name: 五霞町
    lg_code: "085463"                # tenants.goka.lg_code
    population: 9376
  naka:
    name: 那珂市
    lg_code: "082261"
    population: 0                    # tenants.naka.population
systems:
  goka-juki:
    tenant: gokaa                    # systems.goka-juki.tenant
    business: 住民基本台帳
    tier: 7                          # systems.goka-juki.tier
    source: {kind: path, path: /srv/goka}
hosts:
  hv01:
    site: primary
    role: hypervisor
    address: 127.0.1.11
    port: 70000                      # hosts.hv01.port
  hv02: {site: nowhere, role: hypervisor, address: 127.0.1.12}  # hosts.hv02.site
drills:
  workers: 0                         # drills.workers
"""


def _marked(text: str) -> dict[str, int]:
    """Field path -> line of every line carrying a ``# <field>`` marker."""
    return {line.rsplit("# ", 1)[1]: n for n, line in enumerate(text.splitlines(), 1) if "# " in line}


def test_seven_problems_are_all_shown_with_their_lines(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bcpctl.yaml"
    path.write_text(SEVEN, encoding="utf-8")
    shown = cli("config", "check", "--config", str(path))
    assert shown.returncode == 2
    assert shown.stderr == f"bcpctl: error: {path}: 7 problems\n"
    expected = sorted(_marked(SEVEN).items(), key=lambda item: item[1])
    lines = shown.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines] == [field for field, _ in expected]
    assert [line.split(": ")[0] for line in lines] == [f"{path}:{n}" for _, n in expected]
    assert f"{path}:15: systems.goka-juki.tenant: unknown tenant 'gokaa'" in lines
    assert f"{path}:7: tenants.goka.lg_code: check digit of 085463 is wrong (expected 4)" in lines

    as_json = cli("config", "check", "--config", str(path), "--json")
    assert as_json.returncode == 2
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert {p["field"]: p["line"] for p in data["problems"]} == _marked(SEVEN)

    # every other command still stops at the first, one line, and says where to see the rest
    refused = cli("dc", "inventory", "--config", str(path))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.endswith("(and 5 more: bcpctl config check lists them)\n")


def test_checks_across_sections_are_reported_together_at_their_lines(cli: Cli, tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    raw["exports"]["site"] = "moon"
    raw["schedules"]["replicate"] = "every now and then"
    raw["drills"]["smoke_expect"] = {"no-such-system": "1"}
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    shown = cli("config", "check", "--config", str(path), "--json")
    assert shown.returncode == 2, shown.stderr
    problems = json.loads(shown.stdout)["problems"]
    assert sorted(p["field"] for p in problems) == [
        "drills.smoke_expect.no-such-system",
        "exports.site",
        "schedules.replicate",
    ]
    document = load_located(path.read_text(encoding="utf-8"))
    assert all(p["line"] == document.line(p["field"].split(".")) and p["line"] > 1 for p in problems)


def test_a_valid_file_is_one_ok_line(cli: Cli) -> None:
    shown = cli("config", "check", "--config", str(EXAMPLE))
    assert shown.returncode == 0, shown.stderr
    *warnings, last = shown.stdout.splitlines()
    assert last == f"{EXAMPLE}: ok (2 sites, 4 tenants, 168 systems, 6 hosts, 1 partner)"
    # the example ships SQLite control-state copies without control_public_key: said, not refused
    assert [w.split(" are not")[0] for w in warnings] == [
        f"{EXAMPLE}: warning: control-state copies of {site}" for site in ("primary", "offsite")
    ]
    assert shown.stderr == ""


def test_a_yaml_syntax_error_is_exit_2_with_its_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bcpctl.yaml"
    path.write_text("consortium: x\nsites:\n  primary: {prefecture: a\n", encoding="utf-8")
    shown = cli("config", "check", "--config", str(path))
    assert shown.returncode == 2
    assert shown.stdout.startswith(f"{path}:4: ") and shown.stderr == f"bcpctl: error: {path}: 1 problem\n"
