"""Deliveries on the command line: what the web handed out, and the partner's signed deletion confirmation.

The bundle is delivered as the web delivers it (:func:`victim_support.delivery.download`);
``bcpctl export deliveries`` lists it and ``bcpctl export confirm-deletion`` records the
partner's statement, signed with the partner's registered key by ``ssh-keygen`` itself. A
statement the partner did not sign — another key, another purpose's signature, bytes
changed after signing, another request — changes nothing.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dc.clock import JST
from tests.conftest import Cli
from tests.victim_support.conftest import Site
from tests.victim_support.flow import approved_request, context
from tests.victim_support.test_cli import one_line_error
from victim_support import delivery, signing
from victim_support.deletion import NAMESPACE, confirm_signed_deletion

#: what the audit records for a deletion confirmation, from the web and the command line alike
CONFIRMATION_DETAILS = {"deleted_by", "note", "expires_at", "before_expiry", "via"}


@dataclass
class Delivered:
    site: Site
    request_id: str
    bundle_root: Path
    partner_key: Path

    @property
    def config(self) -> tuple[str, str]:
        return ("--config", str(self.site.config_path))

    @property
    def env(self) -> dict[str, str]:
        return {"BCPCTL_CONTROL_DB": f"sqlite:///{self.site.root / 'control.db'}"}


def _register_partner_key(site: Site, partner: str = "koga") -> Path:
    """The partner's Ed25519 key (an OpenSSH file, as ssh-keygen uses it), registered as its verify_key."""
    key = Ed25519PrivateKey.generate()
    path = site.root / f"{partner}-request.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    path.chmod(0o600)
    doc = yaml.safe_load(site.config_path.read_text())
    doc["partners"][partner]["verify_key"] = signing.public_line(key.public_key())
    site.config_path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def _deliver(site: Site, request_id: str, bundle_root: Path, now: datetime | None = None) -> delivery.Download:
    config, settings, state = context(site)
    return delivery.download(state, config, settings, request_id, "koga", bundle_root=bundle_root,
                             config_dir=site.root, now=now or datetime.now(UTC), via="api")  # fmt: skip


@pytest.fixture
def delivered(site: Site, tmp_path: Path) -> Delivered:
    key = _register_partner_key(site)
    request_id = approved_request(site, formats=())
    _deliver(site, request_id, tmp_path / "bundles")
    return Delivered(site, request_id, tmp_path / "bundles", key)


def statement(request_id: str, partner: str = "koga", deleted_by: str = "古河市 防災課 鈴木", note: str = "") -> str:
    return (
        f"bcpctl-bundle-deletion/1\nrequest: {request_id}\npartner: {partner}\ndeleted-by: {deleted_by}\nnote: {note}\n"
    )


def ssh_keygen_sign(key: Path, path: Path, namespace: str = NAMESPACE) -> Path:
    """Sign ``path`` as a partner does, with OpenSSH's own tool; returns ``path.sig``."""
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", str(key), str(path)], check=True,
                   capture_output=True)  # fmt: skip
    return path.with_name(path.name + ".sig")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _audited(d: Delivered, action: str) -> list[dict[str, object]]:
    from victim_support.audit import read_entries

    state = context(d.site)[2]
    return [{"actor": e.actor, **json.loads(e.details)} for e in read_entries(state) if e.action == action]


def test_the_statuses_of_a_delivery() -> None:
    t = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
    made = delivery.Delivery("exp-1", "koga", "/b", "0" * 64, t, t + timedelta(days=30), 0, None, None, None)
    assert made.status(t) == "ready"
    fetched = delivery.Delivery(**{**vars(made), "downloads": 2, "last_download_at": t})
    assert fetched.status(t) == "downloaded"
    assert fetched.status(t + timedelta(days=30)) == "expired"  # the partner's confirmation is due
    gone = delivery.Delivery(**{**vars(fetched), "deleted_at": t + timedelta(days=3), "deleted_by": "鈴木"})
    assert gone.status(t + timedelta(days=31)) == "deleted"


def test_deliveries_lists_what_the_partner_received(cli: Cli, delivered: Delivered) -> None:
    listed = cli("export", "deliveries", *delivered.config, "--json", env=delivered.env)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["request_id"], row["partner"], row["status"], row["downloads"]) == (
        delivered.request_id,
        "koga",
        "downloaded",
        1,
    )
    assert row["deleted_at"] is None and row["deleted_by"] is None
    for key in ("built_at", "expires_at", "last_download_at"):
        assert datetime.fromisoformat(row[key]).utcoffset() == timedelta(0), (key, row[key])  # ISO 8601, offset
    only = cli("export", "deliveries", "--request", delivered.request_id, *delivered.config, "--json",
               env=delivered.env)  # fmt: skip
    assert json.loads(only.stdout) == [row]
    people = cli("export", "deliveries", *delivered.config, env={**delivered.env, "COLUMNS": "200"})
    assert people.returncode == 0 and "downloaded" in people.stdout
    built = datetime.fromisoformat(row["built_at"]).astimezone(JST)
    assert f"{built:%Y-%m-%d %H:%M} JST" in people.stdout
    one_line_error(cli("export", "deliveries", "--request", "exp-nope", *delivered.config, env=delivered.env), 2,
                   "no export request 'exp-nope'")  # fmt: skip


def test_confirm_deletion_records_the_partners_signed_statement(cli: Cli, delivered: Delivered, tmp_path: Path) -> None:
    text = statement(delivered.request_id, note="保有期間満了: 全ての複製を消去")
    signed = _write(tmp_path / "statement.txt", text)
    ssh_keygen_sign(delivered.partner_key, signed)
    assert any((delivered.bundle_root / delivered.request_id).iterdir())

    done = cli("export", "confirm-deletion", delivered.request_id, "--partner", "koga", "--statement", str(signed),
               *delivered.config, "--json", env=delivered.env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["deleted_by"] == "古河市 防災課 鈴木" and result["request_id"] == delivered.request_id
    assert datetime.fromisoformat(result["deleted_at"]).utcoffset() == timedelta(0)
    assert not (delivered.bundle_root / delivered.request_id).exists()  # the server's copy went too
    (entry,) = _audited(delivered, "bundle.deletion_confirmed")
    assert entry["actor"] == "partner:koga" and set(entry) - {"actor"} == CONFIRMATION_DETAILS
    assert entry["note"] == "保有期間満了: 全ての複製を消去" and entry["via"] == "signed statement"
    listed = json.loads(cli("export", "deliveries", *delivered.config, "--json", env=delivered.env).stdout)
    assert [(r["status"], r["deleted_by"]) for r in listed] == [("deleted", "古河市 防災課 鈴木")]

    again = cli("export", "confirm-deletion", delivered.request_id, "--partner", "koga", "--statement", str(signed),
                *delivered.config, env=delivered.env)  # fmt: skip
    one_line_error(again, 2, "already confirmed")
    assert len(_audited(delivered, "bundle.deletion_confirmed")) == 1


def _unchanged(d: Delivered) -> None:
    found = delivery.find_delivery(context(d.site)[2], d.request_id)
    assert found is not None and found.deleted_at is None
    assert any((d.bundle_root / d.request_id).iterdir())
    assert _audited(d, "bundle.deletion_confirmed") == []


def test_what_the_partner_did_not_sign_changes_nothing(cli: Cli, delivered: Delivered, tmp_path: Path) -> None:
    def confirm(path: Path, *extra: str, partner: str = "koga", request_id: str = delivered.request_id):  # type: ignore[no-untyped-def]
        return cli("export", "confirm-deletion", request_id, "--partner", partner, "--statement", str(path),
                   *extra, *delivered.config, env=delivered.env)  # fmt: skip

    good = _write(tmp_path / "good.txt", statement(delivered.request_id))
    stranger = tmp_path / "stranger.key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    ssh_keygen_sign(stranger, good)
    one_line_error(confirm(good), 3, "not a signature by partner 'koga''s registered key")

    # The partner's own signature, made for its web requests, is no deletion statement.
    other_purpose = _write(tmp_path / "request.txt", statement(delivered.request_id))
    ssh_keygen_sign(delivered.partner_key, other_purpose, namespace="bcpctl-partner-request")
    one_line_error(confirm(other_purpose), 3, "not a signature by partner 'koga''s registered key")

    changed = _write(tmp_path / "changed.txt", statement(delivered.request_id, note="消去済み"))
    sig = ssh_keygen_sign(delivered.partner_key, changed)
    _write(changed, statement(delivered.request_id, deleted_by="誰か別の人"))
    one_line_error(confirm(changed), 3, "not a signature")
    one_line_error(confirm(good, "--signature", str(sig)), 3, "not a signature")  # a signature of other bytes

    elsewhere = _write(tmp_path / "other-request.txt", statement("exp-20261129-ffffff"))
    ssh_keygen_sign(delivered.partner_key, elsewhere)
    one_line_error(confirm(elsewhere), 2, "confirms the deletion of exp-20261129-ffffff, not of")

    someone = _write(tmp_path / "tsukuba.txt", statement(delivered.request_id, partner="tsukuba"))
    ssh_keygen_sign(delivered.partner_key, someone)
    one_line_error(confirm(someone), 2, "the statement is partner 'tsukuba''s, not 'koga''s")
    one_line_error(confirm(someone, partner="tsukuba"), 2, "partner 'tsukuba' has no registered verify_key")

    extra_line = _write(tmp_path / "extra.txt", statement(delivered.request_id) + "copies: 0\n")
    ssh_keygen_sign(delivered.partner_key, extra_line)
    one_line_error(confirm(extra_line), 2, "must have exactly the lines")
    blank = _write(tmp_path / "blank.txt", statement(delivered.request_id, deleted_by=""))
    ssh_keygen_sign(delivered.partner_key, blank)
    one_line_error(confirm(blank), 2, "deleted-by must name who deleted the copies")

    one_line_error(confirm(tmp_path / "missing.txt"), 2, "does not exist")
    unsigned = _write(tmp_path / "unsigned.txt", statement(delivered.request_id))
    one_line_error(confirm(unsigned), 2, "signature")
    _unchanged(delivered)


def test_nothing_to_confirm_before_the_first_download(cli: Cli, site: Site, tmp_path: Path) -> None:
    key = _register_partner_key(site)
    request_id = approved_request(site, formats=())
    signed = _write(tmp_path / "statement.txt", statement(request_id))
    ssh_keygen_sign(key, signed)
    env = {"BCPCTL_CONTROL_DB": f"sqlite:///{site.root / 'control.db'}"}
    done = cli("export", "confirm-deletion", request_id, "--partner", "koga", "--statement", str(signed),
               "--config", str(site.config_path), env=env)  # fmt: skip
    one_line_error(done, 2, "was never downloaded")


@settings(max_examples=30, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_a_signed_statement_is_refused(delivered: Delivered, tmp_path: Path, data: st.DataObject) -> None:
    """Every byte the partner signed counts: flip, drop or add one anywhere and nothing is recorded."""
    from victim_support.errors import SignatureInvalid

    text = statement(delivered.request_id, note="消去済み").encode()
    key = serialization.load_ssh_private_key(delivered.partner_key.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    signature = _write(tmp_path / "statement.sig", signing.sign(key, text, NAMESPACE))
    at = data.draw(st.integers(0, len(text) - 1), label="at")
    how = data.draw(st.sampled_from(["flip", "drop", "insert"]), label="how")
    byte = data.draw(st.integers(0, 255), label="byte")
    if how == "flip":
        mutated = text[:at] + bytes([text[at] ^ (byte or 1)]) + text[at + 1 :]
    elif how == "drop":
        mutated = text[:at] + text[at + 1 :]
    else:
        mutated = text[:at] + bytes([byte]) + text[at:]
    path = tmp_path / "statement.txt"
    path.write_bytes(mutated)
    config, settings_, state = context(delivered.site)
    with pytest.raises(SignatureInvalid):
        confirm_signed_deletion(state, config, settings_, delivered.request_id, partner="koga", statement=path,
                                signature=signature, now=datetime.now(UTC))  # fmt: skip
    _unchanged(delivered)
