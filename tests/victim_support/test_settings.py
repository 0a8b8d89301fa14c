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
