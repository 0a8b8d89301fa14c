"""A partner enrolled through an operator's one-time invitation: the form enrols nobody until the phone call.

Nothing can be requested between the form and ``partner confirm``; a token works once and
only until it expires; any other token is refused with one message that names nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dc.errors import AuthError, UsageError
from dc.state import open_state
from tests.conftest import Cli
from tests.victim_support.conftest import Site
from tests.victim_support.flow import context
from tests.victim_support.test_enrolment import BANDO, keys
from tests.victim_support.test_prefiling import file, new_request
from victim_support.enrolment import with_enrolled
from victim_support.invitation import REFUSED, confirm, invite, invited_partner, submit
from victim_support.policy import Scope

NOW = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)


def form(tmp_path: Path) -> dict[str, object]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipient, key = keys(tmp_path)
    return {**BANDO, "age_recipient": recipient, "verify_key": f"{key}.pub", "officials": ["坂東市 危機管理課 小林"]}


def test_an_invited_partner_can_request_nothing_until_the_fingerprints_are_confirmed(
    site: Site, tmp_path: Path
) -> None:
    config, _settings, state = context(site)
    invitation = invite(state, config, partner_id="bando", valid=timedelta(hours=2), actor="os:op", now=NOW)
    assert invitation.path == f"/portal/enrol/{invitation.token}"
    assert invited_partner(state, invitation.token, NOW) == "bando"
    submitted, (age_fp, key_fp) = submit(state, config, invitation.token, now=NOW, **form(tmp_path))  # type: ignore[arg-type]
    assert submitted.partner_id == "bando"
    # submitted but unconfirmed: no path knows the partner
    assert "bando" not in with_enrolled(config, state).partners
    with pytest.raises(UsageError, match="unknown partner 'bando'"):
        file(site, new_request(Scope(all_areas=True), partner="bando"))
    # a fingerprint heard wrong enrols nobody
    with pytest.raises(AuthError, match="do not match"):
        confirm(state, config, "bando", age_fingerprint=age_fp, key_fingerprint="SHA256:wrong", actor="os:op", now=NOW)
    assert "bando" not in with_enrolled(config, state).partners
    # as read aloud: groups with dashes, any case, either form of the key's fingerprint
    done = confirm(state, config, "bando", age_fingerprint=age_fp.lower(), key_fingerprint=key_fp.split(" (")[1][:-1],
                   actor="os:op", now=NOW)  # fmt: skip
    assert done.name == "坂東市" and "bando" in with_enrolled(config, state).partners
    assert file(site, new_request(Scope(all_areas=True), partner="bando")).partner == "bando"  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="no submitted, unconfirmed enrolment"):
        confirm(state, config, "bando", age_fingerprint=age_fp, key_fingerprint=key_fp, actor="os:op", now=NOW)


def test_a_used_or_expired_invitation_is_refused(site: Site, tmp_path: Path) -> None:
    config, _settings, state = context(site)
    used = invite(state, config, partner_id="bando", valid=timedelta(hours=1), actor="os:op", now=NOW)
    submit(state, config, used.token, now=NOW, **form(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(AuthError, match=REFUSED):
        submit(state, config, used.token, now=NOW, **form(tmp_path / "again"))  # type: ignore[arg-type]
    with pytest.raises(AuthError, match=REFUSED):
        invited_partner(state, used.token, NOW)
    late = invite(state, config, partner_id="sakai", valid=timedelta(hours=1), actor="os:op", now=NOW)
    with pytest.raises(AuthError, match=REFUSED):
        invited_partner(state, late.token, NOW + timedelta(hours=1))
    with pytest.raises(AuthError, match=REFUSED):
        submit(state, config, late.token, now=NOW + timedelta(hours=2), **form(tmp_path / "late"))  # type: ignore[arg-type]
    assert invited_partner(state, late.token, NOW + timedelta(minutes=59)) == "sakai"


def test_no_token_but_the_issued_one_opens_the_form(site: Site) -> None:
    config, _settings, state = context(site)
    issued = invite(state, config, partner_id="bando", valid=timedelta(hours=1), actor="os:op", now=NOW).token

    @settings(max_examples=25, derandomize=True, deadline=None)
    @given(guess=st.text(max_size=60) | st.just(issued[:-1]) | st.just(issued.upper()) | st.just(issued + "="))
    def refused(guess: str) -> None:
        if guess != issued:
            with pytest.raises(AuthError, match=REFUSED):
                invited_partner(state, guess, NOW)

    refused()
    assert invited_partner(state, issued, NOW) == "bando"


@pytest.mark.parametrize("partner_id", ["koga", "Bad Id"])
def test_no_invitation_for_a_partner_that_exists_or_a_bad_id(site: Site, partner_id: str) -> None:
    config, _settings, state = context(site)
    with pytest.raises(UsageError):
        invite(state, config, partner_id=partner_id, valid=timedelta(hours=1), actor="os:op", now=NOW)


def test_cli_invite_then_confirm(cli: Cli, site: Site, isolated_env: Path, tmp_path: Path) -> None:
    done = cli("partner", "invite", "bando", "--valid", "2h", "--config", str(site.config_path), "--json")
    assert done.returncode == 0, done.stderr
    token = json.loads(done.stdout)["token"]
    config, _settings, _state = context(site)
    state = open_state(f"sqlite:///{isolated_env / 'control.db'}")  # the command's own control database
    _form, (age_fp, key_fp) = submit(state, config, token, now=datetime.now(UTC), **form(tmp_path))  # type: ignore[arg-type]
    wrong = cli("partner", "confirm", "bando", "--age-fingerprint", "0000", "--key-fingerprint", key_fp,
                "--config", str(site.config_path))  # fmt: skip
    assert wrong.returncode == 3 and "do not match" in wrong.stderr
    ok = cli("partner", "confirm", "bando", "--age-fingerprint", age_fp, "--key-fingerprint", key_fp.split()[0],
             "--config", str(site.config_path), "--json")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    listed = cli("partner", "list", "--config", str(site.config_path), "--json")
    assert "bando" in {p["id"] for p in json.loads(listed.stdout)}


def test_an_invitation_cannot_give_a_removed_partners_id_to_another_municipality(site: Site, tmp_path: Path) -> None:
    from victim_support.tokens import remove_partner

    config, _settings, state = context(site)
    remove_partner(state, config, "koga", actor="ops", now=NOW)  # 古河市, configured, then removed
    invitation = invite(state, config, partner_id="koga", valid=timedelta(hours=2), actor="os:op", now=NOW)
    with pytest.raises(UsageError, match="partner id 'koga' belonged to 古河市"):
        submit(state, config, invitation.token, now=NOW, **form(tmp_path))  # type: ignore[arg-type]
    assert "koga" not in with_enrolled(config, state).partners
    with pytest.raises(UsageError, match="no submitted, unconfirmed enrolment"):
        confirm(state, config, "koga", age_fingerprint="x", key_fingerprint="y", actor="os:op", now=NOW)


@pytest.mark.parametrize(
    ("used", "confirmed", "minutes_left", "status"),
    [
        (False, False, 1, "waiting"),
        (False, False, 0, "expired"),
        (True, False, -60, "pending"),
        (True, True, -9, "confirmed"),
    ],
)
def test_an_invitations_status_is_a_function_of_its_times(
    used: bool, confirmed: bool, minutes_left: int, status: str
) -> None:
    from victim_support.invitation import invitation_status

    at = NOW - timedelta(minutes=1)
    assert invitation_status(at if used else None, NOW if confirmed else None, NOW + timedelta(minutes=minutes_left),
                             NOW) == status  # fmt: skip


def test_cli_invitations_lists_waiting_pending_expired_and_confirmed_without_a_secret(
    cli: Cli, site: Site, isolated_env: Path, tmp_path: Path
) -> None:
    config, _settings, _state = context(site)
    state = open_state(f"sqlite:///{isolated_env / 'control.db'}")
    assert cli("db", "upgrade", "--config", str(site.config_path)).returncode == 0
    now = datetime.now(UTC)
    old = invite(
        state, config, partner_id="sakai", valid=timedelta(minutes=5), actor="os:op", now=now - timedelta(hours=1)
    )
    waiting = invite(state, config, partner_id="yuki", valid=timedelta(hours=2), actor="os:op", now=now)
    sent = invite(state, config, partner_id="bando", valid=timedelta(hours=2), actor="os:op", now=now)
    _form, (age_fp, key_fp) = submit(state, config, sent.token, now=now, **form(tmp_path))  # type: ignore[arg-type]
    args = ("partner", "invitations", "--config", str(site.config_path))
    listed = cli(*args, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["partner_id"]: r for r in json.loads(listed.stdout)}
    assert {p: r["status"] for p, r in rows.items()} == {"sakai": "expired", "yuki": "waiting", "bando": "pending"}
    assert rows["bando"]["name"] == "坂東市" and rows["bando"]["lg_code"] == "082287" and rows["bando"]["officials"]
    assert rows["bando"]["used_at"].endswith("+00:00") and rows["yuki"]["name"] is None
    human = cli(*args, env={"BCPCTL_LANG": "ja", "COLUMNS": "250"})
    assert human.returncode == 0 and human.stdout.count("JST") >= 4 and "坂東市 (082287)" in human.stdout
    for secret in (old.token, waiting.token, sent.token, age_fp, key_fp.split()[0]):
        assert secret not in listed.stdout + human.stdout, "never a token, never the fingerprints to be heard"
    confirm(state, config, "bando", age_fingerprint=age_fp, key_fingerprint=key_fp.split()[0], actor="os:op", now=now)
    pending = cli(*args, "--status", "pending", "--json")
    assert json.loads(pending.stdout) == []
    confirmed = json.loads(cli(*args, "--status", "confirmed", "--json").stdout)
    assert [r["partner_id"] for r in confirmed] == ["bando"] and confirmed[0]["confirmed_by"] == "os:op"
