"""The portal's practice switch: a 訓練 bundle for the logged-in partner that only it opens, nobody real in it."""

from __future__ import annotations

import io
import sqlite3
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from failover.records import get_run
from tests.bcpctl.web.test_evacuees import _login
from tests.victim_support.flow import read_csv
from victim_support.bundle import open_bundle
from victim_support.exportdrill import TRAINING
from victim_support.signing import load_verify_key


def test_a_partner_practises_with_synthetic_residents_only(
    client: Any, web_ctx: Any, web_site: Any, tmp_path: Path
) -> None:
    # not logged in: the login page, never a bundle
    assert client.get("/portal/practice", follow_redirects=False).status_code in (302, 303, 307)
    csrf = _login(client)
    assert client.post("/portal/practice", data={"tenant": "goka"}).status_code == 403  # no CSRF token
    done = client.post("/portal/practice", data={"tenant": "goka", "csrf": csrf})
    assert done.status_code == 200, done.text
    assert TRAINING in unquote(done.headers["content-disposition"])
    with tarfile.open(fileobj=io.BytesIO(done.content)) as tar:
        tar.extractall(tmp_path / "got", filter="data")
    (bundle,) = (tmp_path / "got").iterdir()
    opened = open_bundle(bundle, web_site.partner_identity, load_verify_key(web_site.tenant_verify_key),
                         tmp_path / "opened", datetime.now(UTC))  # fmt: skip
    rows = read_csv(opened.out / f"{TRAINING}-persons.csv")
    real = sqlite3.connect(web_site.root / "goka-juki.sqlite").execute(
        "select family_name || '\u3000' || given_name, birth_date from residents where status='1'"
    )
    real_people = set(real.fetchall())
    assert rows and not any((r["name"], r["birth_date"]) in real_people for r in rows)
    # recorded as a drill whose actor is the partner; a second practice within the minute waits
    again = client.post("/portal/practice", data={"tenant": "goka", "csrf": csrf})
    assert again.status_code == 429
    record = get_run(web_ctx.state, done.headers["x-bcpctl-drill-run"])
    assert record is not None and (record.mode, record.status, record.operator) == ("export", "passed", "partner:koga")
