"""A small consortium with a seeded registry, a primary repository and an "offsite" copy of it.

The offsite site is a second local-directory repository filled by copying the primary's
directory (replication proper is tested in tests/replication). Building it once per module and
copying it per test keeps the suite fast; tests that destroy the primary work on their copy.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyrage
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import PASSWORD

if TYPE_CHECKING:
    from dc.config import Consortium

FAST_KDF = {"memory_kib": 8192, "iterations": 1, "lanes": 1}
SCALE = 0.05  # 五霞町 at 5%: ~470 residents, enough for every row class to appear
#: each approver's own secret; the configuration holds only the credentials enrolled from them
APPROVER_SECRETS = {
    "goka-suzuki": "suzuki-approver-secret-01",
    "goka-tanaka": "tanaka-approver-secret-01",
    "pref-bosai": "bosai-approver-secret-001",
}


@functools.cache
def approver_credentials() -> dict[str, str]:
    """The ``approvers:`` section for :data:`APPROVER_SECRETS` (at the cheapest cost the configuration accepts)."""
    from dc.approvers import MIN_COST, enroll

    return {name: enroll(secret, MIN_COST).text() for name, secret in APPROVER_SECRETS.items()}


@dataclass
class Site:
    root: Path
    config_path: Path
    partner_key: Path
    partner_recipient: str
    other_key: Path
    verify_key: str
    signing_key: Path

    @property
    def primary(self) -> Path:
        return self.root / "primary"

    @property
    def offsite(self) -> Path:
        return self.root / "offsite"

    @property
    def registry(self) -> Path:
        return self.root / "goka-juki.sqlite"

    def config(self) -> Consortium:
        from dc.config import load_config

        return load_config(self.config_path)[0]


def write_identity(path: Path) -> str:
    """An age-keygen style identity file; returns the recipient."""
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    path.write_text(f"# created: {datetime.now(UTC).isoformat()}\n# public key: {recipient}\n{identity}\n")
    path.chmod(0o600)
    return recipient


def write_keys(root: Path) -> tuple[str, str]:
    """The partner's age identity (koga.key), goka's signing key and pseudonym secret, as the
    configuration names them; returns the partner's recipient and goka's verify key."""
    from victim_support.signing import public_line

    recipient = write_identity(root / "koga.key")
    key = Ed25519PrivateKey.generate()
    (root / "goka-sign").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    verify = public_line(key.public_key())
    (root / "goka-sign.pub").write_text(verify + " goka\n")
    (root / "goka.secret").write_text("goka-pseudonym-secret-for-tests-0123456789\n")
    return recipient, verify


def config_doc(root: Path, recipient: str, **exports: object) -> dict[str, object]:
    return {
        "consortium": "test",
        "sites": {
            "primary": {"prefecture": "茨城県", "role": "primary", "repository": str(root / "primary")},
            "offsite": {"prefecture": "北海道", "role": "offsite", "repository": str(root / "offsite")},
        },
        "tenants": {
            "goka": {"name": "五霞町", "lg_code": "085421", "population": 9376, "pfif_domain": "town.goka.lg.jp"}
        },
        "systems": {
            "goka-juki": {
                "tenant": "goka",
                "business": "住民基本台帳",
                "tier": 1,
                "rpo": "15m",
                "rto": "4h",
                "source": {"kind": "sqlite", "path": "goka-juki.sqlite"},
            }
        },
        "approvers": dict(approver_credentials()),
        "partners": {
            "koga": {"name": "古河市", "lg_code": "082040", "age_recipient": recipient},
            "tsukuba": {"name": "つくば市", "lg_code": "082201", "age_recipient": recipient},
        },
        "exports": {
            "approvals": {"APPI-69-2-3": 2, "DMA-90-4-1-3": 2},
            "alternate_approvers": ["pref-bosai"],
            "tenants": {
                "goka": {
                    "approvers": ["goka-suzuki", "goka-tanaka"],
                    "signing_key_file": "goka-sign",
                    "pseudonym_secret_file": "goka.secret",
                }
            },
            **exports,
        },
    }


def make_site(root: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    from backup.jobs import backup_systems, site_repository
    from backup.opening import init_repository
    from dc.config import load_config
    from storage.url import open_backend
    from victim_support.seed import seed_registry

    root.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("BCPCTL_PASSWORD", PASSWORD)
    monkeypatch.setenv("BCPCTL_CACHE_DIR", str(root / "build-cache"))
    recipient, verify = write_keys(root)
    write_identity(root / "stranger.key")
    config_path = root / "bcpctl.yaml"
    config_path.write_text(yaml.safe_dump(config_doc(root, recipient), allow_unicode=True))
    config = load_config(config_path)[0]
    seed_registry(str(root / "goka-juki.sqlite"), "goka", config, scale=SCALE)
    init_repository(open_backend(str(root / "primary"), create=True), PASSWORD, kdf=FAST_KDF)
    with site_repository(config, "primary", root) as repo:
        outcome = backup_systems(config, repo, None, config_dir=root)
    assert all(o.ok for o in outcome), outcome
    shutil.copytree(root / "primary", root / "offsite")  # "replication": copy the ciphertext as is
    return Site(root, config_path, root / "koga.key", recipient, root / "stranger.key", verify, root / "goka-sign")


@pytest.fixture(scope="module")
def base_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    with pytest.MonkeyPatch.context() as mp:
        return make_site(tmp_path_factory.mktemp("export-site") / "site", mp)


@pytest.fixture
def site(base_site: Site, tmp_path: Path) -> Site:
    """A private copy of the module's site (tests may destroy the primary)."""
    root = tmp_path / "site"
    shutil.copytree(base_site.root, root, symlinks=True, ignore=shutil.ignore_patterns("build-cache"))
    text = base_site.config_path.read_text().replace(str(base_site.root), str(root))
    (root / "bcpctl.yaml").write_text(text)
    return Site(
        root,
        root / "bcpctl.yaml",
        root / "koga.key",
        base_site.partner_recipient,
        root / "stranger.key",
        base_site.verify_key,
        root / "goka-sign",
    )


DISASTER_DATE = date(2026, 11, 20)
