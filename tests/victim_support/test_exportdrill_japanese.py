"""A 訓練 export's steps, read back from its stored run as ``drill report`` shows them: every step's
detail in Japanese (the stored English stays as it was, word for word, for scripts and old records)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bcpctl.commands.runs import japanese
from failover.records import load_document
from tests.bcpctl.test_japanese_fragments import english_words
from tests.victim_support.conftest import Site
from tests.victim_support.flow import context
from victim_support.exportdrill import BASIS, run_export_drill
from victim_support.fields import FIELDS


@pytest.mark.parametrize("opened", [True, False], ids=["opened", "not-opened"])
def test_every_step_detail_of_a_stored_export_drill_reads_japanese(site: Site, tmp_path: Path, opened: bool) -> None:
    config, settings, state = context(site)
    result = run_export_drill(
        state, config, settings, tenant_id="goka", partner_id="koga", out=tmp_path / "out", now=datetime.now(UTC),
        actor="test", config_dir=site.root, partner_identity=site.partner_key if opened else None,
    )  # fmt: skip
    found = load_document(state, result.run_id)
    assert found is not None and found[1] is not None
    details = [c["detail"] for c in found[1]["checks"] if c["detail"]]
    assert len(details) == len(result.steps), details
    assert any("signed with" in d for d in details), details  # the record keeps its English
    for detail in details:
        shown = japanese(detail)
        assert shown != detail or not english_words(detail), detail
        # the fields are listed by their keys, codes as the request names them
        ids = re.findall(r"\b[0-9a-f]{8,}\b", detail)  # a snapshot id is hex: 'b7cb4068' is no English
        assert english_words(shown, BASIS, *FIELDS, *ids, "--partner-identity") == [], (detail, shown)
