"""A consortium for the web tests: the victim-support test site plus accounts, keys and a replica.

The site (seeded 五霞町 registry, primary repository, offsite copy) is built once per module
by ``tests.victim_support.conftest.make_site``; replication then records the lag the
dashboard reads, exactly as ``bcpctl replicate`` does. Each test gets its own copy, so the
control database (requests, audit chain, accounts) starts the same every time.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.victim_support.conftest import APPROVER_SECRETS, DISASTER_DATE, make_site

PASSWORDS = {
    "ops": "ops-password-0001",
    "goka-suzuki": "suzuki-password-01",
    "goka-tanaka": "tanaka-password-01",
    "pref-bosai": "bosai-password-0001",
    "audit": "audit-password-001",
    "koga-yamada": "yamada-password-01",
}
ROLES = {
    "ops": ("operator",),
    "goka-suzuki": ("approver",),
    "goka-tanaka": ("approver",),
    "pref-bosai": ("approver",),
    "audit": ("auditor",),
    # an approver account that is not among the tenant's configured approvers
    "koga-yamada": ("approver", "operator"),
}


@dataclass
class WebSite:
    root: Path
    config_path: Path
    partner_identity: Path
    partner_key: Ed25519PrivateKey
    tenant_verify_key: str

    @property
    def control_db(self) -> str:
        return f"sqlite:///{self.root / 'control.db'}"


def _key_line(key: Ed25519PrivateKey) -> str:
    from victim_support.signing import public_line

    return public_line(key.public_key())


def build_web_site(root: Path, monkeypatch: pytest.MonkeyPatch) -> WebSite:
    from dc.accounts import add_account
    from dc.clock import utcnow
    from dc.passwords import Cost
    from dc.state import open_state

    root.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("BCPCTL_CONTROL_DB", f"sqlite:///{root / 'control.db'}")  # backup runs are recorded here
    open_state(f"sqlite:///{root / 'control.db'}", create=True).dispose()  # as bcpctl db upgrade installs it
    site = make_site(root, monkeypatch)
    shutil.rmtree(site.offsite)  # the offsite is filled by real replication, which records the lag
    key = Ed25519PrivateKey.generate()
    (root / "koga-request.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    (root / "koga-request.key").chmod(0o600)
    doc = yaml.safe_load(site.config_path.read_text())
    doc["control_db"] = f"sqlite:///{root / 'control.db'}"
    doc["partners"]["koga"]["verify_key"] = _key_line(key)
    doc["sites"]["offsite"]["drill_dir"] = str(root / "drill")
    doc["drills"] = {"report_dir": "reports", "workers": 1}
    doc["web"] = {"bundle_dir": "bundles", "partner_requests_per_minute": 1000}
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    state = open_state(doc["control_db"])
    _replicate(root)
    for name, roles in ROLES.items():
        add_account(state, name, roles, PASSWORDS[name], actor="test", now=utcnow(), cost=Cost(8, 1, 1))
    state.dispose()
    return WebSite(root, site.config_path, site.partner_key, key, site.verify_key)


def _replicate(root: Path) -> None:
    from replication.jobs import Endpoint, replicate_between
    from replication.sync import SyncOptions

    url = f"sqlite:///{root / 'control.db'}"
    replicate_between(Endpoint(str(root / "primary")), Endpoint(str(root / "offsite")), SyncOptions(), state_url=url)


@pytest.fixture(scope="module")
def base_web_site(tmp_path_factory: pytest.TempPathFactory) -> WebSite:
    with pytest.MonkeyPatch.context() as mp:
        return build_web_site(tmp_path_factory.mktemp("web-site") / "site", mp)


@pytest.fixture
def web_site(base_web_site: WebSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WebSite:
    """A private copy of the module's site (with its control database)."""
    root = tmp_path / "site"
    shutil.copytree(base_web_site.root, root, symlinks=True, ignore=shutil.ignore_patterns("build-cache"))
    text = base_web_site.config_path.read_text().replace(str(base_web_site.root), str(root))
    (root / "bcpctl.yaml").write_text(text)
    monkeypatch.setenv("BCPCTL_CONTROL_DB", f"sqlite:///{root / 'control.db'}")
    _replicate(root)  # the copy's offsite is another URL: record its lag as `bcpctl replicate` would
    return WebSite(
        root,
        root / "bcpctl.yaml",
        root / "koga.key",
        base_web_site.partner_key,
        base_web_site.tenant_verify_key,
    )


@pytest.fixture
def web_ctx(web_site: WebSite) -> Iterator[Any]:
    from bcpctl.web.context import WebContext

    ctx = WebContext.load(web_site.config_path)
    yield ctx
    ctx.jobs.wait(120)
    ctx.state.dispose()


@pytest.fixture
def client(web_ctx: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from bcpctl.web.app import create_app

    with TestClient(create_app(web_ctx), base_url="https://testserver") as test_client:
        yield test_client


def basic(name: str, password: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password or PASSWORDS[name]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant": "goka",
        "disaster_id": "2026-kanto-eq",
        "disaster_date": DISASTER_DATE.isoformat(),
        "basis": "APPI-69-2-3",
        "purposes": ["EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION"],
        "fields": ["name", "name_kana", "birth_date", "sex", "address"],
        "all_areas": True,
        "formats": ["pfif"],
        "requested_by": "koga-sato",
    }
    body.update(overrides)
    return body


def signed_post(client: Any, key: Ed25519PrivateKey, path: str, body: Any, partner: str = "koga") -> Any:
    """POST ``body`` signed as ``partner`` (the headers a partner's client sends)."""
    from dc.clock import utcnow
    from victim_support.partnersig import sign_headers

    raw = json.dumps(body, ensure_ascii=False).encode() if not isinstance(body, bytes) else body
    headers = sign_headers(key, partner, "POST", path, raw, now=utcnow())
    return client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})


def signed_get(client: Any, key: Ed25519PrivateKey, path: str, partner: str = "koga") -> Any:
    from dc.clock import utcnow
    from victim_support.partnersig import sign_headers

    return client.get(path, headers=sign_headers(key, partner, "GET", path, b"", now=utcnow()))


def proof(approver: str, **body: Any) -> dict[str, Any]:
    """A decision's body with the approver's own secret (the web asks for it as the CLI does)."""
    return {**body, "approver_secret": APPROVER_SECRETS[approver]}


def approve_both(client: Any, request_id: str) -> Any:
    path = f"/api/operator/requests/{request_id}/approve"
    first = client.post(path, json=proof("goka-suzuki"), headers=basic("goka-suzuki"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending"
    second = client.post(path, json=proof("goka-tanaka"), headers=basic("goka-tanaka"))
    assert second.status_code == 200, second.text
    return second
