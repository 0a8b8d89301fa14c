"""``bcpctl web`` alone serves the runbooks: an alert's link opens whichever process runs.

The real web app (no ``bcpctl serve`` in front): every ``runbook_url`` the rules carry is
fetched from it, and its fragment must be an element id of the page; the pages keep their
own strict policy (no script) under the web's security headers.
"""

from __future__ import annotations

from typing import Any

import yaml

from monitoring.runbooklinks import shipped_rules
from tests.bcpctl.test_runbook_web import _ids


def test_every_alerts_runbook_link_opens_on_the_web_app(client: Any) -> None:
    links = [r["annotations"]["runbook_url"] for g in yaml.safe_load(shipped_rules())["groups"] for r in g["rules"]]
    assert links and all(link.startswith("/runbook/ja#") for link in links)
    page = client.get("/runbook/ja")  # no login: at 03:00 the operator reads it before anything else
    assert page.status_code == 200 and '<html lang="ja">' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY"
    ids = _ids(page.text)
    assert not [link for link in links if link.partition("#")[2] not in ids]
    english = client.get("/runbook/en")
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert client.get("/runbook", follow_redirects=False).headers["location"] == "/runbook/ja"
    assert client.get("/runbook/de").status_code == 404
    assert client.get("/runbook/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert "/runbook/ja" not in client.get("/openapi.json").json()["paths"]
