"""A partner opens a real bundle in Chromium with nothing but the portal's page: the same files as `bcpctl export open`.

The bundle is the one the partner API serves (built from the offsite replica); the page is
served by the real app on loopback and driven in Debian's Chromium. Every file the page offers
is saved through the browser's own download and compared byte for byte with what the CLI writes.
The page must refuse what the CLI refuses (another signer, a changed payload, another
recipient, an expired bundle) and must not send anything anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.bcpctl.web.browser import browser_context, shot
from tests.bcpctl.web.conftest import approve_both, request_body, signed_get, signed_post
from tests.servers.asgi import serving
from tests.victim_support.conftest import write_identity

ROOT = Path(__file__).resolve().parents[3]


def _bundle_download(web_ctx: Any, web_site: Any, dest: Path) -> Path:
    """The tar a partner downloads for an approved request."""
    from fastapi.testclient import TestClient

    from bcpctl.web.app import create_app

    with TestClient(create_app(web_ctx), base_url="https://testserver") as client:
        request_id = signed_post(client, web_site.partner_key, "/api/partner/requests", request_body()).json()["id"]
        approve_both(client, request_id)
        response = signed_get(client, web_site.partner_key, f"/api/partner/requests/{request_id}/bundle")
        assert response.status_code == 200, response.text
    dest.write_bytes(response.content)
    return dest


def _cli_open(bundle_tar: Path, identity: Path, verify_key: str, out: Path) -> dict[str, Any]:
    with tarfile.open(bundle_tar) as tar:
        tar.extractall(out.parent / "extracted", filter="data")
    bundle = next((out.parent / "extracted").iterdir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bcpctl.cli", "export", "open", str(bundle), "--identity", str(identity),
         "--verify-key", verify_key, "--out", str(out), "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _open(page: Any, base: str, files: list[Path], identity: Path, verify_key: str) -> str:
    page.goto(f"{base}/portal/open")
    page.set_input_files("#bundle", [str(f) for f in files])
    page.set_input_files("#identity", str(identity))
    page.fill("#verify_key", verify_key)
    page.click("#open")
    page.wait_for_selector("#status[data-state]")
    state = page.get_attribute("#status", "data-state")
    text = page.inner_text("#status")
    page.evaluate("document.getElementById('status').removeAttribute('data-state')")
    return f"{state}: {text}"


def test_the_page_opens_a_real_bundle_like_export_open_and_refuses_what_it_refuses(
    web_site: Any, web_ctx: Any, tmp_path: Path
) -> None:
    bundle_tar = _bundle_download(web_ctx, web_site, tmp_path / "bundle.tar")
    cli = _cli_open(bundle_tar, web_site.partner_identity, web_site.tenant_verify_key, tmp_path / "cli")
    expected = {p.name: p.read_bytes() for p in (tmp_path / "cli").iterdir()}
    assert "persons.xlsx" in expected and "persons.csv" in expected and "pfif.xml" in expected

    from bcpctl.web.app import create_app

    with serving(create_app(web_ctx)) as base, browser_context(tmp_path / "profile", tmp_path / "dl") as context:
        page = context.new_page()
        sent: list[str] = []
        page.on("request", lambda r: sent.append(f"{r.method} {r.url}") if r.url.startswith("http") else None)
        response = page.goto(f"{base}/portal/open")
        csp = response.headers["content-security-policy"]
        assert "connect-src 'none'" in csp and "form-action 'none'" in csp and "script-src 'self'" in csp

        assert _open(page, base, [bundle_tar], web_site.partner_identity, web_site.tenant_verify_key).startswith(
            "opened"
        )
        summary = page.inner_text("#summary")
        assert "五霞町" in summary and "JST" in summary and str(cli["counts"]["rows"]) in summary
        page.set_viewport_size({"width": 1280, "height": 900})
        shot(page, "open-bundle-1280")
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "open-bundle-390")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
        links = page.locator("#files a")
        offered = {}
        for index in range(links.count()):
            with page.expect_download() as info:
                links.nth(index).click()
            download = info.value
            saved = tmp_path / "browser" / download.suggested_filename
            download.save_as(saved)
            offered[saved.name] = saved.read_bytes()
        assert offered == expected  # every file, byte for byte what `bcpctl export open` wrote

        # Every network request the page made is its own page, stylesheet and scripts: nothing was sent.
        assert {s.split("?")[0] for s in sent} <= {
            f"GET {base}/portal/open",
            f"GET {base}/static/style.css",
            f"GET {base}/static/age-encryption.js",
            f"GET {base}/static/open-bundle.js",
        }, sent

        # What the CLI refuses, the page refuses, and it names the reason.
        stranger = Ed25519PrivateKey.generate()
        from victim_support.signing import public_line

        other_signer = _open(page, base, [bundle_tar], web_site.partner_identity, public_line(stranger.public_key()))
        assert other_signer.startswith("refused") and "別の鍵" in other_signer
        parts = {p.name: p for p in next((tmp_path / "extracted").iterdir()).iterdir()}
        changed = tmp_path / "changed"
        changed.mkdir()
        for name, path in parts.items():
            data = bytearray(path.read_bytes())
            if name == "payload.tar.age":
                data[-20] ^= 1
            (changed / name).write_bytes(bytes(data))
        tampered = _open(page, base, sorted(changed.iterdir()), web_site.partner_identity, web_site.tenant_verify_key)
        assert tampered.startswith("refused") and "SHA-256" in tampered
        shot(page, "open-bundle-refused")
        write_identity(tmp_path / "stranger.key")
        wrong = _open(page, base, [bundle_tar], tmp_path / "stranger.key", web_site.tenant_verify_key)
        assert wrong.startswith("refused") and "別の宛先" in wrong
        expires = web_ctx.now() + timedelta(days=400)
        page.clock.set_fixed_time(expires)
        expired = _open(page, base, [bundle_tar], web_site.partner_identity, web_site.tenant_verify_key)
        assert expired.startswith("refused") and "保有期限" in expired and "JST" in expired and "+00:00" not in expired
        assert page.locator("#result").is_hidden()

        page.goto(f"{base}/portal/guide")  # the keep/use/delete page, readable on a phone too
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            shot(page, f"portal-guide-{width}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_guide_is_reachable_from_the_portal_without_a_login(web_ctx: Any) -> None:
    from fastapi.testclient import TestClient

    from bcpctl.web.app import create_app

    with TestClient(create_app(web_ctx), base_url="https://testserver") as client:
        login = client.get("/portal/login").text
        assert 'href="/portal/guide"' in login and 'href="/portal/open"' in login
        guide = client.get("/portal/guide")
        assert guide.status_code == 200
        text = guide.text
        for heading in ("保管する", "利用する", "削除する"):
            assert heading in text
        assert text.index("保管する") < text.index("<small>Keep</small>")  # Japanese first
        assert "script-src 'none'" in guide.headers["content-security-policy"]  # only the opener runs script
        opener = client.get("/portal/open")
        assert "connect-src 'none'" in opener.headers["content-security-policy"]
        assert client.get("/static/age-encryption.js").content.startswith(b"var BcpAge = ")
