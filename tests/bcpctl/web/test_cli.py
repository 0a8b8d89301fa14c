"""`bcpctl web`: accounts and tokens from the command line, and the standalone server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any


def test_account_and_token_commands(cli: Any, web_site: Any, tmp_path: Any) -> None:
    config = str(web_site.config_path)
    secret = tmp_path / "pw"
    secret.write_text("a-long-enough-password\n")
    added = cli(
        "web",
        "account",
        "add",
        "kacho",
        "--role",
        "approver",
        "--role",
        "auditor",
        "--password-file",
        str(secret),
        "--config",
        config,
        "--json",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["roles"] == ["approver", "auditor"]
    again = cli(
        "web", "account", "add", "kacho", "--role", "approver", "--password-file", str(secret), "--config", config
    )
    assert again.returncode == 2 and again.stderr.strip() == "bcpctl: error: account 'kacho' already exists"
    short = tmp_path / "short"
    short.write_text("short\n")
    weak = cli("web", "account", "add", "x", "--role", "operator", "--password-file", str(short), "--config", config)
    assert weak.returncode == 2 and "at least 12 characters" in weak.stderr
    listed = json.loads(cli("web", "account", "list", "--config", config, "--json").stdout)
    assert "kacho" in [a["name"] for a in listed]
    assert "password_hash" not in json.dumps(listed) and "argon2" not in json.dumps(listed)
    issued = cli("web", "token", "issue", "koga", "--label", "tablet", "--config", config, "--json")
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)
    assert token["token"].startswith("bcpt_")
    tokens = cli("web", "token", "list", "--config", config, "--json").stdout
    assert token["token"] not in tokens and token["id"] in tokens
    assert cli("web", "token", "revoke", token["id"], "--config", config).returncode == 0
    assert cli("web", "token", "issue", "mito", "--config", config).returncode == 2


def test_standalone_server_serves_openapi_and_pages(web_site: Any) -> None:
    env = dict(os.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "bcpctl.cli", "web", "--config", str(web_site.config_path), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stderr.readline() if process.stderr else ""
        assert "serving http://127.0.0.1:" in line, line
        base = line.split("serving ")[1].split("/ ")[0]
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as response:
                    spec = json.load(response)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert "/api/partner/requests" in spec["paths"]
        assert spec["paths"]["/api/partner/requests"]["post"]["security"] == [{"partnerSignature": []}]
        with urllib.request.urlopen(f"{base}/login", timeout=5) as page:
            assert "運用者ログイン" in page.read().decode()
    finally:
        process.terminate()
        assert process.wait(15) == 0  # a graceful stop, not the re-raised SIGTERM that kills the process


def test_bad_listen_and_missing_config_are_usage_errors(cli: Any, web_site: Any) -> None:
    bad = cli("web", "--config", str(web_site.config_path), "--listen", "nowhere")
    assert bad.returncode == 2 and "invalid --listen" in bad.stderr
    assert cli("web").returncode == 2
