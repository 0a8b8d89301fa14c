"""The consortium configuration: the shipped example is valid; every error names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dc.config import load_config, parse_config
from dc.configtypes import dsn_holds_password
from dc.duration import format_duration, parse_duration
from dc.errors import ConfigError
from dc.lgcodes import lg_code_check_digit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ibaraki.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def test_example_describes_the_reference_consortium() -> None:
    config, path = load_config(EXAMPLE)
    assert path == EXAMPLE
    populations = {t.name: t.population for t in config.tenants.values()}
    assert populations == {"常陸大宮市": 43695, "那珂市": 55986, "かすみがうら市": 44217, "五霞町": 9376}
    assert config.primary_site == "primary" and config.offsite_sites == ["offsite"]
    assert config.systems["goka-juki"].rpo == 15 * 60 and config.systems["goka-juki"].rto == 4 * 3600


def test_example_sends_nothing_off_the_machine() -> None:
    import ipaddress
    import re

    text = EXAMPLE.read_text(encoding="utf-8")
    for address in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text):
        assert ipaddress.ip_address(address).is_loopback, address


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["systems"]["goka-juki"].update(rpo="fifteen"), "systems.goka-juki.rpo"),
        (lambda c: c["systems"]["goka-juki"].update(tier=9), "systems.goka-juki.tier"),
        (lambda c: c["systems"]["goka-juki"].update(tenant="nowhere"), "systems.goka-juki.tenant: unknown tenant"),
        (lambda c: c["tenants"]["goka"].update(lg_code="085465"), "tenants.goka.lg_code"),
        (
            lambda c: c["systems"]["naka-juki"]["source"].update(dsn="postgresql://u:secret@127.0.0.1/x"),
            "holds a password",
        ),
        (lambda c: c["hosts"]["hv01"].update(site="moon"), "hosts.hv01.site: unknown site"),
        (lambda c: c["systems"]["goka-juki"].update(run_on="db9"), "systems.goka-juki.run_on: unknown host"),
        (lambda c: c["sites"]["offsite"].update(role="primary"), "exactly one site"),
        (lambda c: c.update(surprise=1), "surprise"),
    ],
)
def test_invalid_config_names_file_and_field(tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    path, message = _refusal(tmp_path, mutate)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def _refusal(tmp_path: Path, mutate) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    """The example, changed by ``mutate``, written out and loaded: its path and the refusal."""
    raw = example()
    mutate(raw)
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return path, str(err.value)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (
            lambda c: c["sites"]["offsite"].update(drill_dsn="postgresql://bcp:s3cret-pw@127.0.0.1:5433/postgres"),
            "sites.offsite.drill_dsn",
        ),
        (
            lambda c: c["sites"]["offsite"].update(drill_dsn="host=127.0.0.1 user=bcp password=s3cret-pw"),
            "sites.offsite.drill_dsn",
        ),
        (
            lambda c: c["systems"]["naka-juki"].update(restore_dsn="postgresql://bcp@127.0.0.1/x?password=s3cret-pw"),
            "systems.naka-juki.restore_dsn",
        ),
        (
            lambda c: c["systems"]["naka-juki"]["source"].update(dsn="postgresql://u:s3cret-pw@127.0.0.1/x"),
            "systems.naka-juki.source.dsn",
        ),
        (lambda c: c.update(control_db="postgresql+psycopg://bcp:s3cret-pw@127.0.0.1/control"), "control_db"),
    ],
)
def test_a_dsn_with_a_password_is_refused_naming_the_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    path, message = _refusal(tmp_path, mutate)
    assert message == f"{path}: {field}: the DSN holds a password; use PGPASSWORD or a .pgpass file instead"
    assert "s3cret-pw" not in message


def test_dsn_holds_password() -> None:
    holding = [
        "postgresql://bcp:pw@127.0.0.1:5433/postgres",
        "postgresql://127.0.0.1/x?sslmode=disable&PASSWORD=pw",
        "password=pw host=127.0.0.1",
        "host=127.0.0.1 password = pw",
    ]
    clean = [
        "postgresql://bcp@127.0.0.1:5433/postgres",
        "postgresql://bcp:@127.0.0.1/x",  # empty: libpq then asks PGPASSWORD or .pgpass
        "postgresql:///x?host=/run/postgresql&passfile=/etc/bcpctl/pgpass",
        "host=127.0.0.1 dbname=password_history user=bcp",
        "sqlite:////var/lib/bcpctl/control.db",
    ]
    assert [dsn for dsn in holding if not dsn_holds_password(dsn)] == []
    assert [dsn for dsn in clean if dsn_holds_password(dsn)] == []


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("consortium: x\nsites: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/bcpctl.yaml")


def test_lg_code_check_digits_of_the_reference_municipalities() -> None:
    for code in ("082252", "082261", "082309", "085421", "082201"):
        assert lg_code_check_digit(code[:5]) == int(code[5])


def test_durations() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1h30m") == 5400 and parse_duration(60) == 60
    assert format_duration(5400) == "1h30m"
    for bad in ("", "5x", "h", "-1"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_parse_config_minimal() -> None:
    config = parse_config(
        {
            "consortium": "c",
            "sites": {"p": {"prefecture": "茨城県", "repository": "/tmp/r"}},
            "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
        }
    )
    assert config.systems == {}
