"""storage/site.py: every caller reaches a site's storage with the site's own pinned host keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dc.config import Consortium, parse_config
from dc.errors import AuthError, ConfigError
from storage.local import LocalBackend
from storage.site import open_site
from tests.servers.sshd import SshServer
from tests.servers.storage import sftp_url


def consortium(**sites: dict[str, Any]) -> Consortium:
    raw = {"consortium": "test", "sites": {name: {"prefecture": "茨城県", **site} for name, site in sites.items()}}
    return parse_config({**raw, "tenants": {}, "systems": {}})


def test_an_unknown_site_is_a_configuration_error_naming_the_known_ones(tmp_path: Path) -> None:
    config = consortium(primary={"repository": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"unknown site 'offsite' \(known: primary\)") as refused:
        open_site(config, "offsite")
    assert refused.value.exit_code == 2


def test_a_local_site_opens_its_directory_and_creates_it_when_asked(tmp_path: Path) -> None:
    config = consortium(primary={"repository": str(tmp_path / "repo")})
    backend = open_site(config, "primary", create=True)
    assert isinstance(backend, LocalBackend) and backend.root == tmp_path / "repo"


@pytest.mark.sshd
def test_an_sftp_site_is_reached_with_its_own_known_hosts_relative_to_the_configuration(
    sshd_server: SshServer, sftp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "pins").write_text(sshd_server.known_hosts.read_text())
    (tmp_path / "other-pins").write_text(
        "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKZm4nHOgCt0W7fWBnS8yLB8zrHhOZZ6l5wF7Xk1Yk2f\n"
    )
    url = sftp_url(sshd_server, tmp_path / "repo")
    # The environment offers nothing: the site's pins alone must be enough.
    monkeypatch.delenv("BCPCTL_KNOWN_HOSTS")
    monkeypatch.setenv("HOME", str(tmp_path))
    config = consortium(offsite={"repository": url, "known_hosts": "pins"})
    backend = open_site(config, "offsite", config_dir=tmp_path)
    try:
        backend.save("config", b"x")
        assert backend.load("config") == b"x"
    finally:
        backend.close()
    # The environment's file pins the right key, but the site's pins are the ones that count.
    monkeypatch.setenv("BCPCTL_KNOWN_HOSTS", str(sshd_server.known_hosts))
    wrong = consortium(offsite={"repository": url, "known_hosts": "other-pins"})
    with pytest.raises(AuthError, match="unknown host key") as refused:
        open_site(wrong, "offsite", config_dir=tmp_path)
    assert refused.value.exit_code == 3
