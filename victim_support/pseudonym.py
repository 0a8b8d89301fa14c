"""Per-partner pseudonymous ids: a stable reference for Y that means nothing anywhere else.

``person_ref`` and ``household_ref`` are HMAC-SHA256 of 宛名番号 / 世帯番号 under a key derived
from the tenant's secret and the partner's 全国地方公共団体コード. The same resident gets the
same reference in every bundle to the same partner (so Y can match updates and report back),
different references at different partners (so two partners cannot join their lists), and the
data center cannot reverse them without the tenant's secret.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from dc.errors import N_, UsageError
from dc.secrets import read_secret_file, secret_from_env
from victim_support.settings import ExportSettings, env_name, resolve

SECRET_ENV_PREFIX = "BCPCTL_EXPORT_SECRET"
MIN_SECRET_CHARS = 16
_CONTEXT = b"bcpctl-export-pseudonym/v1\x00"


class Pseudonymizer:
    """HMAC-SHA256 (RFC 2104) with the pads hashed once: a build computes ~100,000 of these."""

    def __init__(self, secret: bytes, partner_lg_code: str) -> None:
        key = hmac.digest(secret, _CONTEXT + partner_lg_code.encode(), "sha256").ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._households: dict[str, str] = {}

    def _mac(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def person(self, atena_no: str) -> str:
        return self._mac(b"P\x00" + atena_no.encode())[:10].hex()

    def household(self, setai_no: str) -> str:
        ref = self._households.get(setai_no)
        if ref is None:
            ref = self._households[setai_no] = self._mac(b"H\x00" + setai_no.encode())[:10].hex()
        return ref


def load_secret(settings: ExportSettings, tenant_id: str, config_dir: Path | None = None) -> bytes:
    """The tenant's pseudonym secret from its configured file or environment variable."""
    tenant = settings.tenant(tenant_id)
    if tenant.pseudonym_secret_file:
        secret = read_secret_file(resolve(tenant.pseudonym_secret_file, config_dir), "pseudonym secret")
    else:
        name = tenant.pseudonym_secret_env or env_name(SECRET_ENV_PREFIX, tenant_id)
        secret = secret_from_env(name, "pseudonym secret") or ""
        if not secret:
            raise UsageError(
                N_(
                    "no pseudonym secret for {tenant_id}: set ${name} or "
                    "exports.tenants.{tenant_id}.pseudonym_secret_file"
                ),
                tenant_id=tenant_id,
                name=name,
            )
    if len(secret) < MIN_SECRET_CHARS:
        raise UsageError(
            N_("the pseudonym secret for {tenant_id} is too short (at least {MIN_SECRET_CHARS} characters)"),
            tenant_id=tenant_id,
            MIN_SECRET_CHARS=MIN_SECRET_CHARS,
        )
    return secret.encode()
