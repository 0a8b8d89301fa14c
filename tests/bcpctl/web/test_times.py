"""The dashboard and the drill report page it links show a run's time in JST, on the JST date."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.bcpctl.web.conftest import PASSWORDS
from tests.failover.documents import PINNED, WRONG_DAY, document, store_run


@pytest.mark.parametrize("when", list(PINNED), ids=["0030JST", "0859JST"])
def test_dashboard_and_report_page_show_the_pinned_run_in_jst(client: Any, web_ctx: Any, when: datetime) -> None:
    doc = document(when)
    store_run(web_ctx.state, doc, when)
    client.post("/login", data={"name": "ops", "password": PASSWORDS["ops"]})
    dashboard = client.get("/dashboard").text
    row = next(line for line in dashboard.splitlines() if f"/dashboard/drills/{doc['id']}" in line and "<tr>" in line)
    assert PINNED[when] in row and WRONG_DAY not in row and "合格 / passed" in row
    report = client.get(f"/dashboard/drills/{doc['id']}")
    assert report.status_code == 200
    assert PINNED[when][:16] in report.text and WRONG_DAY not in report.text
