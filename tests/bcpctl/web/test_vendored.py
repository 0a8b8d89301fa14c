"""The vendored age implementation is the one scripts/age-bundle/build.sh made, with its licenses, pinned by hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "bcpctl" / "web" / "static"
RECIPE = ROOT / "scripts" / "age-bundle"


def test_vendored_files_match_their_pinned_sha256() -> None:
    pinned = dict(
        reversed(line.split(maxsplit=1)) for line in (STATIC / "age-encryption.sha256").read_text().splitlines()
    )
    assert set(pinned) == {"age-encryption.js", "age-encryption.LICENSE.txt"}
    for name, digest in pinned.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, f"{name} changed: rebuild and re-pin"


def test_the_recipe_pins_exact_versions_and_every_bundled_package_has_its_license() -> None:
    manifest = json.loads((RECIPE / "package.json").read_text())
    lock = json.loads((RECIPE / "package-lock.json").read_text())
    assert manifest["dependencies"] == {"age-encryption": "0.3.1"}  # exact, no range
    licenses = (STATIC / "age-encryption.LICENSE.txt").read_text()
    bundled = [
        "age-encryption",
        "@noble/ciphers",
        "@noble/curves",
        "@noble/hashes",
        "@noble/post-quantum",
        "@scure/base",
    ]
    for package in bundled:
        version = lock["packages"][f"node_modules/{package}"]["version"]
        assert f"==== {package} {version} " in licenses, package
        assert lock["packages"][f"node_modules/{package}"]["integrity"].startswith("sha512-")
    assert "Copyright 2023 The age Authors" in licenses and "Paul Miller" in licenses
