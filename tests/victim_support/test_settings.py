"""The ``exports:`` section is validated with our own model; mistakes name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dc.config import parse_config
from dc.errors import ConfigError
from tests.victim_support.conftest import config_doc
from victim_support.settings import default_site, load_export_settings, registry_system

RECIPIENT = "age18qjne9dpr29q7p4y94g8jfdlvxe6p74n3xkfsm7c0s0x4hsyyygqppyqax"


def config(exports: dict[str, object]):  # type: ignore[no-untyped-def]
    raw = config_doc(Path("/x"), RECIPIENT)
    raw["systems"]["goka-kokuho"] = {  # type: ignore[index]
        "tenant": "goka", "business": "国保", "tier": 2, "source": {"kind": "sqlite", "path": "b"},
    }  # fmt: skip
    raw["exports"] = exports
    return parse_config(raw)


def test_defaults_and_resolution() -> None:
    cfg = config({})
    settings = load_export_settings(cfg)
    assert settings.required_approvals("APPI-69-2-3") == 1
    assert settings.retention_days == 90
    assert registry_system(cfg, settings, "goka") == "goka-juki"
    assert default_site(cfg, settings) == "offsite"
    assert default_site(cfg, load_export_settings(config({"site": "primary"}))) == "primary"


@pytest.mark.parametrize(
    ("exports", "message"),
    [
        ({"approvals": {"CONSENT": 2}}, "exports.approvals.CONSENT: unknown legal basis"),
        ({"approvals": {"APPI-69-2-3": 9}}, "must be between 1 and 5"),
        ({"tenants": {"koga": {}}}, "exports.tenants.koga: unknown tenant"),
        ({"tenants": {"goka": {"registry_system": "goka-kokuho2"}}}, "is not a system of goka"),
        ({"tenants": {"goka": {"approvers": ["a b"]}}}, "exports.tenants.goka.approvers.0"),
        ({"tenants": {"goka": {"escrow_recipient": "age1short"}}}, "exports.tenants.goka.escrow_recipient"),
        ({"tenants": {"goka": {"signing_key": "-----BEGIN"}}}, "exports.tenants.goka.signing_key"),
        ({"alternate_approvers": ["x"], "tenants": {"goka": {"approvers": ["x"]}}}, "cannot also be an alternate"),
        ({"retention_days": 120}, "exceeds max_retention_days"),
        ({"site": "moon"}, "exports.site: unknown site"),
        ({"request_valid_for": "soon"}, "exports.request_valid_for"),
    ],
)
def test_bad_sections_name_file_and_field(exports: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_export_settings(config(exports), "/etc/bcpctl.yaml")
    assert str(info.value).startswith("/etc/bcpctl.yaml: ")


def test_two_registry_systems_need_an_explicit_choice() -> None:
    cfg = config({})
    raw_systems = dict(cfg.systems)
    assert registry_system(cfg, load_export_settings(cfg), "goka") in raw_systems
    cfg2 = config({}).model_copy(update={"systems": {**raw_systems, "goka-juki2": raw_systems["goka-juki"]}})
    with pytest.raises(ConfigError, match=r"set exports\.tenants\.goka\.registry_system"):
        registry_system(cfg2, load_export_settings(cfg2), "goka")


def _with_domains(tenants: str | None, exports: str | None):  # type: ignore[no-untyped-def]
    raw = config_doc(Path("/x"), RECIPIENT)
    goka = raw["tenants"]["goka"]  # type: ignore[index]
    goka.pop("pfif_domain", None)
    if tenants:
        goka["pfif_domain"] = tenants
    if exports:
        raw["exports"]["tenants"]["goka"]["pfif_domain"] = exports  # type: ignore[index]
    return parse_config(raw)


@pytest.mark.parametrize(
    ("tenants", "exports", "effective", "warned"),
    [
        ("town.goka.lg.jp", None, "town.goka.lg.jp", False),
        (None, "town.goka.lg.jp", "town.goka.lg.jp", True),  # the old place: read, with a warning
        ("town.goka.lg.jp", "town.goka.lg.jp", "town.goka.lg.jp", False),  # both agree: nothing to say
        (None, None, None, False),
    ],
)
def test_the_pfif_domain_is_the_tenants_and_the_old_place_still_reads(
    tenants: str | None, exports: str | None, effective: str | None, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from victim_support import settings as module

    module._WARNED.clear()
    with caplog.at_level("WARNING", logger="bcpctl.config"):
        settings = load_export_settings(_with_domains(tenants, exports), "bcpctl.yaml")
    assert settings.tenant("goka").pfif_domain == effective
    said = [r.getMessage() for r in caplog.records]
    assert bool(said) == warned
    if warned:
        assert said == [
            "bcpctl: warning: bcpctl.yaml: exports.tenants.goka.pfif_domain is deprecated: "
            "move it to tenants.goka.pfif_domain"
        ]


def test_a_pfif_domain_in_both_places_that_disagree_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"exports.tenants.goka.pfif_domain \(city.koga.lg.jp\) disagrees"):
        load_export_settings(_with_domains("town.goka.lg.jp", "city.koga.lg.jp"), "bcpctl.yaml")


def test_a_tenant_without_an_exports_entry_gets_its_domain_from_tenants() -> None:
    raw = config_doc(Path("/x"), RECIPIENT)
    raw["exports"]["tenants"] = {}  # type: ignore[index]
    settings = load_export_settings(parse_config(raw))
    assert settings.tenant("goka").pfif_domain == "town.goka.lg.jp"


def test_cli_config_check_refuses_disagreeing_pfif_domains(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    raw = config_doc(tmp_path, RECIPIENT)
    raw["exports"]["tenants"]["goka"]["pfif_domain"] = "city.koga.lg.jp"  # type: ignore[index]
    path = tmp_path / "bcpctl.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    done = cli("partner", "list", "--config", str(path))
    assert done.returncode == 2 and "disagrees with tenants.goka.pfif_domain" in done.stderr
