"""docs/commands.md is the CLI's own help: regenerate it when a command changes."""

from __future__ import annotations

from pathlib import Path

from bcpctl.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_command_reference_is_in_sync() -> None:
    assert DOC.read_text(encoding="utf-8") == render() + "\n", (
        "docs/commands.md is stale: run `.venv/bin/python -m bcpctl.reference > docs/commands.md`"
    )


def test_every_command_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in (
        "backup run",
        "restore",
        "check",
        "forget",
        "key add",
        "replicate",
        "drill run",
        "failover execute",
        "export request",
        "serve",
        "dc run",
        "demo",
    ):
        assert f"## bcpctl {name}\n" in text, name
