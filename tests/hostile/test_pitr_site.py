"""A point-in-time recovery into a database reads the site it is asked to read.

A drill or failover at the offsite recovers a postgres-wal system with
``restore_to_database(..., site=offsite)``; reading the primary's repository instead would
"prove" a recovery the offsite cannot make (and during a disaster read a site that is gone).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backup.opening import init_repository
from backup.pitr import RecoveryTarget, restore_to_database
from dc.config import load_config
from dc.errors import BcpError
from storage.local import LocalBackend
from tests.backup.conftest import FAST_KDF
from tests.conftest import PASSWORD

DSN = "postgresql://u@127.0.0.1:1/juki"


def test_recovery_into_a_database_reads_the_site_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    primary = tmp_path / "primary-repo"
    init_repository(LocalBackend(primary, create=True), PASSWORD, kdf=FAST_KDF)
    offsite = tmp_path / "offsite-repo-that-was-never-created"
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    password.chmod(0o600)
    config_path = tmp_path / "bcpctl.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "consortium": "t",
                "control_db": f"sqlite:///{tmp_path / 'control.db'}",
                "sites": {
                    "primary": {"prefecture": "茨城県", "repository": str(primary)},
                    "offsite": {"prefecture": "茨城県", "role": "offsite", "repository": str(offsite)},
                },
                "tenants": {"goka": {"name": "五霞町", "lg_code": "085421", "population": 9376}},
                "systems": {
                    "juki": {
                        "tenant": "goka",
                        "business": "住民基本台帳",
                        "tier": 1,
                        "rpo": "1m",
                        "rto": "1h",
                        "source": {
                            "kind": "postgres-wal",
                            "dsn": "postgresql://u@127.0.0.1:1/juki",
                            "run_as": "nobody",
                        },
                    }
                },
                "secrets": {"password_file": str(password)},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    monkeypatch.delenv("BCPCTL_SITE", raising=False)
    config, _ = load_config(config_path)
    with pytest.raises(BcpError) as raised:
        restore_to_database(
            config, config_path, "juki", RecoveryTarget(), "postgresql://u@127.0.0.1:1/sandbox", site="offsite"
        )
    # the offsite's repository was opened (and found missing), not the primary's
    assert str(offsite) in raised.value.message, raised.value.message
