"""The portal page an invitation opens: one use, the fingerprints to read aloud, nobody enrolled until confirmed."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.victim_support.test_enrolment import BANDO, keys
from victim_support.enrolment import with_enrolled
from victim_support.invitation import confirm, invite


def test_an_invitation_opens_the_form_once_and_enrols_nobody_until_confirmed(
    client: Any, web_ctx: Any, tmp_path: Path
) -> None:
    ctx = web_ctx
    invitation = invite(
        ctx.state, ctx.config, partner_id="bando", valid=timedelta(hours=1), actor="os:op", now=ctx.now()
    )
    page = client.get(invitation.path)
    assert page.status_code == 200 and 'name="lg_code"' in page.text
    recipient, key = keys(tmp_path)
    form = {**BANDO, "age_recipient": recipient, "verify_key": (Path(f"{key}.pub")).read_text(),
            "officials": "坂東市 危機管理課 小林\n坂東市 危機管理課 山本\n"}  # fmt: skip
    # another site's page cannot post the form for the official
    assert client.post(invitation.path, data=form, headers={"Origin": "https://evil.invalid"}).status_code == 403
    bad = client.post(invitation.path, data={**form, "lg_code": "082288"})
    assert bad.status_code == 400 and "check digit" in bad.text
    done = client.post(invitation.path, data=form)
    assert done.status_code == 200, done.text
    age_fp = re.search(r'id="age-fingerprint">([^<]+)<', done.text)
    key_fp = re.search(r'id="key-fingerprint">([^<]+)<', done.text)
    assert age_fp and key_fp
    # used up: the page and the post answer the same refusal
    for again in (client.get(invitation.path), client.post(invitation.path, data=form)):
        assert again.status_code == 403 and "unknown, used or expired" in again.text
    assert client.get("/portal/enrol/not-a-token").status_code == 403
    assert "bando" not in with_enrolled(ctx.config, ctx.state).partners
    confirm(ctx.state, ctx.config, "bando", age_fingerprint=age_fp[1], key_fingerprint=key_fp[1].split(" (")[0],
            actor="os:op", now=ctx.now())  # fmt: skip
    enrolled = with_enrolled(ctx.config, ctx.state).partners["bando"]
    assert (enrolled.name, enrolled.lg_code) == ("坂東市", "082287")
