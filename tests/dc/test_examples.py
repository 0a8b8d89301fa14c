"""The shipped examples: every configuration loads with every section validated, and nothing in
examples/ points anywhere but this machine or a name under .invalid.

Operators copy these files; a field that no longer validates, or an address that would send
traffic off the machine when someone runs a command on an example (DESIGN: "every address in a
shipped example ... is on loopback or a name under .invalid"), must fail here, not on the day
of a disaster. Hosts are judged from the strings alone: nothing is resolved or contacted.
The sections that dc/ keeps free-form are validated by their owners' loaders, so this test
reaches above dc/ on purpose.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from dc.config import Consortium, load_config
from dc.errors import BcpError, ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.yaml"))
UNIT = EXAMPLES / "bcpctl-serve.service"
PROMETHEUS = EXAMPLES / "prometheus.yml"
RULES = ROOT / "monitoring" / "rules" / "bcpctl.rules.yml"

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>`]+")
_LOCAL_SCHEMES = {"file", "sqlite"}
_PG_SCHEMES = {"postgresql", "postgres"}


def validate_example(path: Path) -> Consortium:
    """Load ``path`` as ``bcpctl`` would and validate every section its subsystems read."""
    from bcpctl.web.settings import load_web_settings
    from dc.cost import parse_costs
    from failover.settings import drill_settings
    from monitoring.schedule import plan_jobs
    from monitoring.tasks import TASKS
    from victim_support.settings import load_export_settings

    config, resolved = load_config(path)
    source = str(resolved)
    drill_settings(config, source)
    load_export_settings(config, source)
    load_web_settings(config, source)
    if config.costs:
        parse_costs(config.costs, source)
    plan_jobs(config, TASKS)
    return config


def host_allowed(host: str | None) -> bool:
    """Loopback, a Unix socket directory, no host at all (local socket), or a name under .invalid."""
    if not host or host.startswith("/"):
        return True
    name = host.strip("[]").rstrip(".").lower()
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost" or name == "invalid" or name.endswith(".invalid")


def _dsn_hosts(dsn: str) -> list[str]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    hosts = [h for h in str(params.get("host") or "").split(",") if h]
    hosts += [h for h in str(params.get("hostaddr") or "").split(",") if h]
    return hosts or [""]


def url_problems(url: str) -> list[str]:
    """Why ``url`` could reach beyond this machine or carries a secret (empty: fine)."""
    from storage.s3 import parse_s3_url
    from storage.sftp import parse_sftp_url

    parts = urlsplit(url)
    if parts.password:
        return [f"{url}: a password in a URL"]
    scheme = parts.scheme
    if scheme in _LOCAL_SCHEMES:
        return [] if parts.hostname in (None, "", "localhost") else [f"{url}: a {scheme} URL on another host"]
    if scheme == "s3":
        location = parse_s3_url(url)
        if not location.endpoint:
            return [f"{url}: an s3:// URL without endpoint= goes to AWS"]
        hosts = [urlsplit(location.endpoint).hostname]
    elif scheme == "sftp":
        hosts = [parse_sftp_url(url).host]
    elif scheme in _PG_SCHEMES:
        hosts = _dsn_hosts(url)
    else:
        hosts = [parts.hostname]
    return [f"{url}: host {h} is neither loopback nor under .invalid" for h in hosts if not host_allowed(h)]


def _hostport(text: str) -> str:
    host = text.rsplit(":", 1)[0] if text.count(":") == 1 or text.startswith("[") else text
    return host.strip("[]")


def config_problems(raw: dict) -> list[str]:
    """Hosts in configuration fields that are not URLs: host addresses, key=value DSNs, commands."""
    problems = []
    for name, host in (raw.get("hosts") or {}).items():
        if not host_allowed(str(host.get("address", ""))):
            problems.append(f"hosts.{name}.address: {host.get('address')} is neither loopback nor under .invalid")
    dsns = [raw.get("control_db")]
    dsns += [site.get("drill_dsn") for site in (raw.get("sites") or {}).values()]
    for system in (raw.get("systems") or {}).values():
        dsns += [(system.get("source") or {}).get("dsn"), system.get("restore_dsn")]
    for dsn in filter(None, dsns):
        if "://" not in dsn:  # URL forms are checked with every other URL in the file
            problems += [f"DSN {dsn}: host {h} is not local" for h in _dsn_hosts(dsn) if not host_allowed(h)]
    command = ((raw.get("drills") or {}).get("steady_state") or {}).get("command", "")
    for host in re.findall(r"(?:^|\s)(?:-h|--host(?:=|\s))\s*(\S+)", command):
        if not host_allowed(host):
            problems.append(f"drills.steady_state.command: host {host} is not local")
    for net in ((raw.get("web") or {}).get("proxy_auth") or {}).get("trusted", []):
        if not ipaddress.ip_network(net, strict=False).subnet_of(ipaddress.ip_network("127.0.0.0/8")) and (
            ipaddress.ip_network(net, strict=False) != ipaddress.ip_network("::1/128")
        ):
            problems.append(f"web.proxy_auth.trusted: {net} is not loopback")
    return problems


def file_problems(path: Path) -> list[str]:
    """Every reason ``path`` (any file in examples/) could send traffic off this machine."""
    text = path.read_text(encoding="utf-8")
    problems = [p for url in _URL.findall(text) for p in url_problems(url.rstrip(".,;)"))]
    if "PRIVATE KEY" in text or re.search(r"(?i)aws_secret_access_key\s*=\s*\S", text):
        problems.append(f"{path.name}: key material in an example")
    if path.suffix == ".yaml":
        problems += config_problems(yaml.safe_load(text) or {})
    elif path.name == PROMETHEUS.name:
        raw = yaml.safe_load(text)
        targets = [
            t
            for section in ("scrape_configs",)
            for job in raw.get(section, [])
            for static in job.get("static_configs", [])
            for t in static.get("targets", [])
        ]
        targets += [
            t
            for manager in (raw.get("alerting") or {}).get("alertmanagers", [])
            for static in manager.get("static_configs", [])
            for t in static.get("targets", [])
        ]
        problems += [f"target {t} is not on loopback" for t in targets if not host_allowed(_hostport(t))]
    elif path.suffix == ".service":
        for listen in re.findall(r"--listen[= ](\S+)", text):
            if not host_allowed(_hostport(listen)):
                problems.append(f"--listen {listen} is not on loopback")
    return problems


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_configuration_validates(path: Path) -> None:
    config = validate_example(path)
    assert config.tenants and config.systems


def test_there_is_a_production_example_with_postgres_sources_and_a_locked_s3_offsite() -> None:
    config = validate_example(EXAMPLES / "production.yaml")
    assert {s.source.kind for s in config.systems.values()} >= {"postgres"}
    offsite = config.sites[config.offsite_sites[0]]
    assert offsite.repository.startswith("s3://") and offsite.object_lock_days > 0
    assert len(config.tenants) == 4 and config.hosts


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.iterdir() if p.is_file()), ids=lambda p: p.name)
def test_examples_point_only_at_this_machine_or_invalid_names(path: Path) -> None:
    assert file_problems(path) == []


@pytest.mark.parametrize(
    "text",
    [
        "s3://bucket/prefix",  # no endpoint: AWS itself
        "s3://bucket/p?endpoint=https://s3.example.com",
        "postgresql://bcp@db.example.org:5432/juki",
        "postgresql://bcp@10.0.0.5/juki",
        "sftp://bcp@backup.example.net:22/srv/bcp",
        "https://grafana.example.jp/d/x",
        "postgresql://bcp:hunter2@127.0.0.1/juki",  # a password in a URL
    ],
)
def test_url_check_flags_what_would_leave_the_machine(text: str) -> None:
    assert url_problems(text)


@pytest.mark.parametrize(
    "text",
    [
        "s3://b/p?endpoint=http://127.0.0.1:7480&region=default",
        "sftp://bcp@sftp.offsite.invalid:22/srv/bcp",
        "postgresql://bcp@[::1]:5432/juki",
        "postgresql:///juki?host=/var/run/postgresql",
        "file:///srv/bcp/repo",
    ],
)
def test_url_check_accepts_loopback_and_invalid_names(text: str) -> None:
    assert url_problems(text) == []


def test_config_check_flags_hosts_dsns_and_commands(tmp_path: Path) -> None:
    raw = yaml.safe_load((EXAMPLES / "production.yaml").read_text(encoding="utf-8"))
    raw["hosts"]["hv01"]["address"] = "192.168.10.11"
    raw["systems"]["goka-juki"]["restore_dsn"] = "host=db.example.org dbname=goka_juki user=bcp"
    raw["drills"]["steady_state"]["command"] = "pg_isready -q -h db.example.org -p 5432"
    raw["web"]["proxy_auth"] = {"header": "X-Remote-User", "trusted": ["10.0.0.0/8"]}
    problems = config_problems(raw)
    assert len(problems) == 4, problems
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert len(file_problems(path)) == 4


@pytest.mark.parametrize(
    ("section", "value", "named"),
    [
        ("drills", {"blackouts": [{"name": "x", "start": "13-01", "end": "13-02"}]}, "drills.blackouts"),
        ("exports", {"approvals": {"DMA-99-9-9": 1}}, "exports.approvals.DMA-99-9-9"),
        ("web", {"session_lifetime": "1s"}, "web.session_lifetime"),
        ("costs", {"items": "none"}, "costs.items"),
        ("schedules", {"check": "every tuesday"}, "schedules.check"),
        ("sites", {"primary": {"prefecture": "茨城県", "repository": "file:///r", "role": "offsite"}}, "sites"),
    ],
)
def test_validation_names_the_broken_section(tmp_path: Path, section: str, value: object, named: str) -> None:
    raw = yaml.safe_load((EXAMPLES / "production.yaml").read_text(encoding="utf-8"))
    raw[section] = value
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(BcpError) as caught:
        validate_example(path)
    assert named in str(caught.value)


def test_a_missing_example_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        validate_example(tmp_path / "absent.yaml")


UNITS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".service", ".timer"))
SERVICES = [p for p in UNITS if p.suffix == ".service"]


def _exec_start(unit: Path) -> list[str]:
    text = unit.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").split()


def parse_bcpctl(argv: list[str]) -> tuple[click.Command, click.Context]:
    """Parse ``bcpctl ARGS`` exactly as the CLI would, without running anything."""
    from bcpctl.cli import cli
    from bcpctl.commands import register_all

    if not cli.commands:
        register_all(cli)
    command: click.Command = cli
    args = list(argv)
    while isinstance(command, click.Group):
        name, found, args = command.resolve_command(command.make_context("bcpctl", args, resilient_parsing=True), args)
        if found is None:
            raise click.UsageError(f"no such command: {args[0] if args else name}")
        command = found
    return command, command.make_context(command.name or "", args)


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_units_run_only_commands_and_flags_that_exist(unit: Path) -> None:
    argv = _exec_start(unit)
    assert argv[0] == "/opt/bcpctl/.venv/bin/bcpctl"
    _command, ctx = parse_bcpctl(argv[1:])
    assert ctx.params


def test_serve_unit_listens_on_loopback_with_the_web_surface() -> None:
    command, ctx = parse_bcpctl(_exec_start(UNIT)[1:])
    assert command.name == "serve" and ctx.params["web"] is True
    assert ctx.params["listen"] == "127.0.0.1:9464" and ctx.params["config_path"] == "/etc/bcpctl/bcpctl.yaml"


def test_unit_flag_check_refuses_a_flag_that_does_not_exist() -> None:
    with pytest.raises(click.UsageError):
        parse_bcpctl(["serve", "--config", "/etc/bcpctl/bcpctl.yaml", "--metrics-port", "9464"])
    with pytest.raises(click.UsageError):
        parse_bcpctl(["forgot", "--repo", "file:///srv/bcp/repo"])


def test_prometheus_example_scrapes_what_the_unit_serves() -> None:
    raw = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    argv = _exec_start(UNIT)
    targets = [t for job in raw["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    assert argv[argv.index("--listen") + 1] in targets
    assert [Path(f).name for f in raw["rule_files"]] == [RULES.name]


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/install-system-deps.sh installs systemd"
    # verify insists that ExecStart's binary exists: point it at this checkout's bcpctl
    bcpctl = Path(sys.executable).parent / "bcpctl"
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8").replace("/opt/bcpctl/.venv/bin/bcpctl", str(bcpctl))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    names = [unit.name for unit in UNITS]
    done = subprocess.run([analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if any(n in line for n in names)]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


@pytest.mark.prometheus
def test_prometheus_example_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/install-system-deps.sh installs prometheus"
    text = PROMETHEUS.read_text(encoding="utf-8").replace("/etc/prometheus/rules/bcpctl.rules.yml", str(RULES))
    config = tmp_path / "prometheus.yml"
    config.write_text(text, encoding="utf-8")
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout, done.stdout
