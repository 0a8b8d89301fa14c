"""The demo's consortium: ``examples/ibaraki.yaml`` moved into one working directory.

Everything the demo makes lives under the working directory, so the story runs with no
server, no network and no root, and a reader can open every file afterwards. Each site keeps
its own state inside its own directory, as a data center does: ``primary/`` holds the
repository, every system's live data, the control database, the passphrase and the index
cache; ``offsite/`` holds the replica, its own control database (promoted at the failover),
the production copies it restores, its reports and the keys exports are signed with.
Removing ``primary/`` is the disaster. What belongs to people rather than to a site — the
custodians' escrow sheets, each official's approver secret, the partner city's identity —
and the consortium's configuration, which both sites hold, sit beside the two.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyrage
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dc.shipped import shipped_folder

EXAMPLE = shipped_folder("bcpctl", "examples") / "ibaraki.yaml"
#: the partner municipality that shelters evacuees in the story
PARTNER = "tsukuba"
#: the story's disaster (its export and its lookups name it)
DISASTER_ID = "2026-ibaraki-hokubu-eq"
#: the second person who approves the failover (drills.failover.approvers)
FAILOVER_APPROVER = "somu-kacho"
#: the data-center operator who runs it; the two-person rule needs their own credential too
FAILOVER_OPERATOR = "dc-operator"
#: the official of the affected town who approves the export (exports.tenants.<t>.approvers)
EXPORT_APPROVERS = ("somu-kacho", "bosai-kacho")

#: the eight systems the story tells for the three larger towns by default: each town's 住民基本台帳
#: and one more of another 専門部会, so every kind of source and every tier but 4 is in the story
REPRESENTATIVE = (
    "hitachiomiya-juki",
    "hitachiomiya-zei",
    "naka-juki",
    "naka-kaigo",
    "kasumigaura-juki",
    "kasumigaura-gaiji",
    "goka-juki",
    "goka-kokuho",
)
#: the town whose every system (all 33 業務 of the procurement) the default demo runs: 五霞町, the
#: 運営協議会's 会長町 and the smallest, so the whole list stays quick to seed and restore
PLAN_TOWN = "goka"
#: which systems a demo runs: the representative eight, those plus all of PLAN_TOWN's, or all
Scope = Literal["representative", "default", "all"]

_SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "山本", "中村", "小林", "加藤", "吉田", "山口"]
_GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "陽菜", "大翔", "結衣", "蓮", "さくら"]


def keep_systems(raw: dict[str, Any], wanted: Collection[str]) -> dict[str, Any]:
    """``raw`` with only the ``wanted`` systems and everything they depend on (a plan needs them)."""
    systems = raw["systems"]
    keep: set[str] = set()
    stack = [name for name in wanted if name in systems]
    while stack:
        name = stack.pop()
        if name not in keep:
            keep.add(name)
            stack.extend(systems[name].get("depends_on") or ())
    raw["systems"] = {name: spec for name, spec in systems.items() if name in keep}
    return raw


def scope_systems(raw: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """The systems of ``scope`` (see :data:`Scope`) kept in ``raw``."""
    if scope == "all":
        return raw
    wanted = set(REPRESENTATIVE)
    if scope == "default":
        wanted |= {name for name, spec in raw["systems"].items() if spec["tenant"] == PLAN_TOWN}
    return keep_systems(raw, wanted)


def demo_config(workdir: Path, scope: Scope = "default") -> dict[str, Any]:
    """The example consortium with every site, source and restore target moved into ``workdir``.

    PostgreSQL and command sources become SQLite files (no server needed); each system restores, on
    failover, into ``offsite/live/<system>``; the failover hooks are manual (there are no
    hosts to run playbooks on) and the steady-state probe, which asks a local PostgreSQL, is
    dropped.
    """
    raw = scope_systems(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")), scope)
    raw.pop("control_db", None)
    for name, site in raw["sites"].items():
        site["repository"] = str(workdir / name / "repo")
        site.pop("object_lock_days", None)
        site["known_hosts"] = str(workdir / "known_hosts")
        site["drill_dir"] = str(workdir / name / "drill")
        site.pop("drill_dsn", None)
        # each site's control state and key material stay inside that site
        site["control_db"] = f"sqlite:///{workdir / name / 'control.db'}"
        site["password_file"] = str(workdir / name / "secrets" / "passphrase")
    systems_dir = workdir / "primary" / "systems"
    for system_id, system in raw["systems"].items():
        if system["source"]["kind"] == "path":
            system["source"] = {"kind": "path", "path": str(systems_dir / system_id)}
        else:
            system["source"] = {"kind": "sqlite", "path": str(systems_dir / f"{system_id}.sqlite")}
        system.pop("restore_dsn", None)
        system["restore_dir"] = str(workdir / "offsite" / "live" / system_id)
    raw.pop("secrets", None)
    drills = raw.setdefault("drills", {})
    drills.pop("steady_state", None)
    # drills and the failover run at the offsite, so their reports are filed there
    drills["report_dir"] = str(workdir / "offsite" / "reports")
    drills.setdefault("failover", {})["hooks"] = "manual"
    raw.setdefault("web", {})["bundle_dir"] = str(workdir / "offsite" / "web-bundles")
    return raw


@dataclass(frozen=True)
class KeyMaterial:
    """The secrets of the story, each in its own 0600 file: never printed, never in the config."""

    #: the primary operators' repository passphrase (``sites.primary.password_file``)
    passphrase: Path
    #: where the offsite operators' own passphrase goes once they have one (``sites.offsite.password_file``)
    offsite_passphrase: Path
    #: approver name -> that official's own secret (their credential is enrolled in the config)
    approver_secrets: dict[str, Path]
    partner_identity: Path
    partner_recipient: str
    #: the partner's own Ed25519 key, which signs the notes it sends back (its public line is its verify_key)
    partner_signing_key: Path
    partner_verify_key: str
    #: tenant -> (signing key file, pseudonym secret file, verify key line)
    tenants: dict[str, tuple[Path, Path, str]]


def _secret_file(path: Path, text: str) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def write_passphrase(path: Path) -> Path:
    return _secret_file(path, secrets.token_urlsafe(24) + "\n")


def make_keys(workdir: Path, tenants: list[str], approvers: list[str]) -> KeyMaterial:
    """Fresh keys for one run: passphrase, approvers' secrets, tenant signing keys, partner identity.

    The export signing keys and pseudonym secrets live at the offsite: exports are built there
    when the primary is gone, and a key held only at the primary would be lost with it.
    """
    from dc.approvers import new_secret
    from victim_support.signing import public_line

    keys = workdir / "offsite" / "secrets"
    officials = workdir / "officials"
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    partner = _secret_file(workdir / "partner" / f"{PARTNER}.age-identity", f"# public key: {recipient}\n{identity}\n")
    partner_key = Ed25519PrivateKey.generate()
    partner_pem = partner_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    partner_signing = _secret_file(workdir / "partner" / f"{PARTNER}.ed25519", partner_pem.decode())
    signing: dict[str, tuple[Path, Path, str]] = {}
    for tenant in tenants:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        sign = _secret_file(keys / f"{tenant}.ed25519", pem.decode())
        pseudonym = _secret_file(keys / f"{tenant}.pseudonym-secret", secrets.token_urlsafe(32) + "\n")
        signing[tenant] = (sign, pseudonym, public_line(key.public_key()))
    return KeyMaterial(
        passphrase=write_passphrase(workdir / "primary" / "secrets" / "passphrase"),
        offsite_passphrase=keys / "passphrase",
        approver_secrets={
            name: _secret_file(officials / f"approver-{name}", new_secret() + "\n") for name in approvers
        },
        partner_identity=partner,
        partner_recipient=recipient,
        partner_signing_key=partner_signing,
        partner_verify_key=public_line(partner_key.public_key()),
        tenants=signing,
    )


def story_config(workdir: Path, keys: KeyMaterial, state: Any, scope: Scope = "default") -> dict[str, Any]:
    """:func:`demo_config` plus this run's keys: control-copy signers, approvers, export signers, the partner.

    Each approver is enrolled as ``bcpctl approver enroll`` does it, at the primary: only the
    public verifier goes into the configuration, the secret stays in its own file, and the
    enrolment is recorded in the primary's audit chain (``state``).
    """
    from dc.approvers import enroll_approver
    from dc.secrets import read_secret_file
    from failover.copysign import write_new_key

    raw = demo_config(workdir, scope)
    for name, site in raw["sites"].items():
        # Each site's controller signs the control-state copies it ships: a failover promotes no
        # copy written with the repository key alone (failover.copysign).
        key = workdir / name / "controller" / "control-sign.pem"
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        site["control_signing_key_file"] = str(key)
        site["control_public_key"] = write_new_key(key)
    raw["approvers"] = {}
    for name, path in keys.approver_secrets.items():
        enrolled = enroll_approver(raw["approvers"], name, read_secret_file(path, "approver secret"), engine=state)
        raw["approvers"][name] = enrolled.credential
    raw["drills"]["failover"]["approvers"] = [FAILOVER_APPROVER]
    raw["partners"][PARTNER]["age_recipient"] = keys.partner_recipient
    raw["partners"][PARTNER]["verify_key"] = keys.partner_verify_key
    for tenant in keys.tenants:
        # PFIF record ids need a domain; the demo's are under .invalid, like every address it uses
        raw["tenants"][tenant]["pfif_domain"] = f"{tenant}.lg.jp.invalid"
    exports = raw.setdefault("exports", {})
    exports["tenants"] = {
        tenant: {
            "approvers": [f"{tenant}-{role}" for role in EXPORT_APPROVERS],
            "signing_key_file": str(sign),
            "pseudonym_secret_file": str(pseudonym),
        }
        for tenant, (sign, pseudonym, _verify) in keys.tenants.items()
    }
    # つくば市 may look up one evacuee of the declared disaster without a per-lookup approval
    exports["lookups"] = {"partners": [PARTNER], "disasters": [DISASTER_ID], "answer_seconds": 1.0}
    return raw


def write_config(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), "utf-8")


def seed_records(path: Path, people: int, rng: random.Random, day: int) -> int:
    """A business system's table (tax, care insurance, health insurance); day 2 adds a day's work.

    Returns the rows written. Fully synthetic: names from a short list, no real person.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS records (atena_no INTEGER PRIMARY KEY, name TEXT, note TEXT)")
        if day == 1:
            rows = [
                (i, rng.choice(_SURNAMES) + rng.choice(_GIVEN), f"{rng.randint(1, 40)}丁目{rng.randint(1, 30)}番")
                for i in range(1, people + 1)
            ]
        else:
            (last,) = conn.execute("SELECT coalesce(max(atena_no), 0) FROM records").fetchone()
            rows = [(last + i, rng.choice(_SURNAMES) + rng.choice(_GIVEN), "新規") for i in range(1, people + 1)]
            first = rng.randint(1, max(1, last - 20))
            conn.execute(
                "UPDATE records SET note = note || '（更正）' WHERE atena_no BETWEEN ? AND ?", (first, first + 20)
            )
        conn.executemany("INSERT INTO records VALUES (?,?,?)", rows)
        conn.commit()
        return len(rows)
    finally:
        conn.close()


def seed_files(root: Path, count: int, rng: random.Random, day: int) -> int:
    """A file-tree system (外字 glyph sources, scanned forms); day 2 adds a tenth as many files."""
    root.mkdir(parents=True, exist_ok=True)
    written = count if day == 1 else max(1, count // 10)
    for i in range(written):
        name = f"form-{i:04d}.txt" if day == 1 else f"form-day{day}-{i:04d}.txt"
        body = f"申請書 {i}\n" + "".join(rng.choice(_SURNAMES) for _ in range(200))
        (root / name).write_text(body, encoding="utf-8")
    if day == 1:
        (root / "scan.bin").write_bytes(rng.randbytes(2 * 1024 * 1024))
    return written


def registry_changes(path: Path, rng: random.Random) -> int:
    """A day of 異動 in a registry: about 0.1% of residents move within the town and get new phones.

    The movers are neighbours in the table (a new housing block registering together), which is
    what a day looks like in a town of 40,000 — and what lets an incremental store only the
    pages that changed. Returns the rows changed.
    """
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("SELECT count(*) FROM residents").fetchone()
        moving = max(5, count // 1000)
        start = rng.randint(1, max(1, count - moving))
        moved = conn.execute(
            "UPDATE residents SET banchi = banchi || '-' || ?, phone = ? WHERE rowid BETWEEN ? AND ?",
            (rng.randint(2, 9), f"029-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", start, start + moving - 1),
        ).rowcount
        conn.commit()
        return moved
    finally:
        conn.close()


def partner_secret(workdir: Path, secret: str) -> Path:
    """The partner's portal token, kept by the partner (never printed)."""
    return _secret_file(workdir / "partner" / f"{PARTNER}.portal-token", secret + "\n")
