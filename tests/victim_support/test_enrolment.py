"""Enrolling a partner on the day: validated, fingerprints to read aloud, nothing before it, nothing after removal."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.errors import UsageError
from tests.conftest import Cli
from tests.victim_support.conftest import Site, write_identity
from tests.victim_support.flow import context
from tests.victim_support.test_cli import one_line_error
from tests.victim_support.test_prefiling import file, new_request
from victim_support.enrolment import enrol, read_aloud, with_enrolled
from victim_support.policy import Scope
from victim_support.signing import public_line
from victim_support.tokens import issue_token, partner_for_token, remove_partner

BANDO = {"name": "坂東市", "lg_code": "082287"}


def keys(tmp_path: Path) -> tuple[str, Path]:
    """坂東市's age recipient and its OpenSSH signing key file (the .pub beside it)."""
    recipient = write_identity(tmp_path / "bando.key")
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "bando-sign"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    path.chmod(0o600)
    (tmp_path / "bando-sign.pub").write_text(public_line(key.public_key()) + "\n")
    return recipient, path


def do_enrol(site: Site, recipient: str, key_file: str, **changes: object) -> object:
    config, _settings, state = context(site)
    fields: dict[str, object] = {
        "partner_id": "bando",
        **BANDO,
        "age_recipient": recipient,
        "verify_key": key_file,
        "officials": ["坂東市 危機管理課 小林"],
        "actor": "test",
        "now": datetime.now(UTC),
        **changes,
    }
    return enrol(state, config, **fields)  # type: ignore[arg-type]


def test_an_unenrolled_municipality_can_request_nothing_until_enrolled(site: Site, tmp_path: Path) -> None:
    recipient, key = keys(tmp_path)
    with pytest.raises(UsageError, match="unknown partner 'bando'"):
        file(site, new_request(Scope(all_areas=True), partner="bando"))
    done = do_enrol(site, recipient, str(key) + ".pub")
    # the fingerprints read aloud: the signing key's is OpenSSH's own, as the partner's ssh-keygen -l shows it
    listed = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True, check=True)
    assert done.verify_key_fingerprint.split()[0] == listed.stdout.split()[1]  # type: ignore[attr-defined]
    assert done.age_recipient_fingerprint == read_aloud(recipient)  # type: ignore[attr-defined]
    config, _settings, state = context(site)
    request = file(site, new_request(Scope(all_areas=True), partner="bando"))
    assert request.partner == "bando"  # type: ignore[attr-defined]
    assert with_enrolled(config, state).partners["bando"].name == "坂東市"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"lg_code": "082288"}, "check digit"),
        ({"lg_code": "82287"}, "6-digit"),
        ({"lg_code": "082040", "name": "古河市"}, "already partner 'koga'"),
        ({"lg_code": "085421", "name": "五霞町"}, "member of the consortium"),
        # a valid check digit of another town (境町's code under 五霞町's name; 坂東市's code under 水戸市)
        ({"lg_code": "085464", "name": "五霞町"}, "not the code of 五霞町"),
        ({"name": "水戸市"}, "not the code of 水戸市"),
        ({"age_recipient": "age1notakey"}, "age_recipient"),
        ({"verify_key": "ssh-rsa AAAAB3Nza"}, "verify-key"),
        ({"officials": [" "]}, "official"),
        ({"partner_id": "koga"}, "already enrolled or configured"),
        ({"partner_id": "Bad Id"}, "not a usable partner id"),
    ],
)
def test_what_does_not_validate_is_refused(site: Site, tmp_path: Path, changes: dict[str, object], why: str) -> None:
    recipient, key = keys(tmp_path)
    with pytest.raises(UsageError, match=why) as caught:
        do_enrol(site, recipient, str(key) + ".pub", **changes)
    assert caught.value.exit_code == 2
    config, _settings, state = context(site)
    assert "bando" not in with_enrolled(config, state).partners


def test_removal_revokes_tokens_and_stops_every_request(site: Site, tmp_path: Path) -> None:
    recipient, key = keys(tmp_path)
    do_enrol(site, recipient, str(key) + ".pub")
    config, _settings, state = context(site)
    now = datetime.now(UTC)
    merged = with_enrolled(config, state)
    issued = [
        issue_token(state, merged, p, label="t", issued_by="ops", lifetime=3600, now=now) for p in ("bando", "koga")
    ]
    assert remove_partner(state, merged, "bando", actor="ops", now=now)["tokens_revoked"] == 1
    assert remove_partner(state, merged, "koga", actor="ops", now=now)["tokens_revoked"] == 1  # a configured one too
    after = with_enrolled(config, state)
    assert "bando" not in after.partners and "koga" not in after.partners
    assert all(partner_for_token(state, after, t.secret, now) is None for t in issued)
    for partner in ("bando", "koga"):
        with pytest.raises(UsageError, match=f"unknown partner '{partner}'"):
            file(site, new_request(Scope(all_areas=True), partner=partner))
    # enrolled again, on purpose, after a removal: allowed
    do_enrol(site, recipient, str(key) + ".pub")
    assert "bando" in with_enrolled(config, state).partners


def test_cli_enrol_prints_both_fingerprints_and_remove(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    recipient, key = keys(tmp_path)
    config = ("--config", str(site.config_path))
    args = ("partner", "enrol", "bando", "--name", "坂東市", "--age-recipient", recipient, "--verify-key",
            f"{key}.pub", "--official", "小林", *config)  # fmt: skip
    one_line_error(cli(*args, "--lg-code", "082288"), 2, "check digit")
    done = cli(*args, "--lg-code", "082287")
    assert done.returncode == 0, done.stderr
    assert read_aloud(recipient) in done.stdout and "SHA256:" in done.stdout
    listed = json.loads(cli("partner", "list", *config, "--json").stdout)
    assert {p["id"] for p in listed} == {"koga", "tsukuba", "bando"}
    removed = cli("partner", "remove", "bando", *config, "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["partner"] == "bando"
    one_line_error(cli("partner", "remove", "bando", *config), 2, "no partner 'bando'")


def test_an_enrolled_partner_looks_up_only_through_its_declared_officials(site: Site, tmp_path: Path) -> None:
    from tests.victim_support.test_lookup import ask, with_lookups
    from victim_support.errors import PolicyRejected

    recipient, key = keys(tmp_path)
    do_enrol(site, recipient, str(key) + ".pub", officials=["坂東市 避難所 小林"])
    with_lookups(site, partners=["bando"])
    with pytest.raises(PolicyRejected, match="not an official that bando enrolled"):
        ask(site, "鈴木", "一郎", "1950-01-01", partner="bando", official="名乗っただけの人")
    assert not ask(site, "鈴木", "一郎", "1950-01-01", partner="bando", official="坂東市 避難所 小林").found


KOGA = {"name": "古河市", "lg_code": "082040"}
SAKAI = {"name": "境町", "lg_code": "085464"}


@pytest.mark.parametrize(("removed", "other"), [("bando", KOGA), ("bando", SAKAI), ("koga", BANDO)])
def test_a_removed_partners_id_is_never_another_municipalitys(
    site: Site, tmp_path: Path, removed: str, other: dict[str, str]
) -> None:
    """Enrolled or configured, once removed its id and history stay its own; the same town may come back."""
    recipient, key = keys(tmp_path)
    if removed == "bando":
        do_enrol(site, recipient, str(key) + ".pub")
    config, _settings, state = context(site)
    original = BANDO if removed == "bando" else KOGA
    remove_partner(state, with_enrolled(config, state), removed, actor="ops", now=datetime.now(UTC))
    with pytest.raises(UsageError, match=f"partner id '{removed}' belonged to {original['name']}"):
        do_enrol(site, recipient, str(key) + ".pub", partner_id=removed, **other)
    assert removed not in with_enrolled(config, state).partners
    do_enrol(site, recipient, str(key) + ".pub", partner_id=removed, **original)
    assert with_enrolled(config, state).partners[removed].lg_code == original["lg_code"]
