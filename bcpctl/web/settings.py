"""The ``web:`` section of ``bcpctl.yaml``, validated here (the consortium model keeps it free-form).

Example::

    web:
      session_lifetime: 8h
      secure_cookies: true          # false only behind plain HTTP on a closed network
      proxy_auth:                    # trust an authenticating reverse proxy's header
        header: X-Remote-User
        trusted: [127.0.0.1/32]
      partner_requests_per_minute: 30
      max_body_bytes: 65536
      signature_window: 5m
      token_lifetime: 30d
      bundle_dir: /var/lib/bcpctl/web-bundles
      drill_fresh: 30d               # "last drill passed within N days" (default drills.max_age)

No secret sits here: operator passwords and partner tokens live hashed in the control
database, partners' verify keys under ``partners:``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dc.config import Consortium
from dc.configtypes import Seconds
from dc.errors import N_, ConfigError
from dc.validation import validation_message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProxyAuth(_Model):
    """An authenticating reverse proxy: its header names the operator account, from trusted peers only."""

    header: str = Field(pattern=r"^[A-Za-z0-9-]{1,64}$")
    trusted: tuple[str, ...] = ("127.0.0.1/32", "::1/128")

    @field_validator("trusted")
    @classmethod
    def _networks(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"'{value}' is not an IP network (e.g. 127.0.0.1/32)") from None
        return values

    def trusts(self, peer: str | None) -> bool:
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(net, strict=False) for net in self.trusted)


class WebSettings(_Model):
    session_lifetime: Annotated[Seconds, Field(ge=60)] = 8 * 3600
    #: Secure cookies (and the ``__Host-`` name prefix); browsers treat 127.0.0.1 as secure too.
    secure_cookies: bool = True
    proxy_auth: ProxyAuth | None = None
    partner_requests_per_minute: int = Field(default=30, ge=1, le=10_000)
    #: failed logins per minute and client address before further attempts are refused.
    logins_per_minute: int = Field(default=10, ge=1, le=10_000)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: how far a signed request's timestamp may be from the server's clock.
    signature_window: Annotated[Seconds, Field(ge=10, le=3600)] = 300
    token_lifetime: Annotated[Seconds, Field(ge=60)] = 30 * 86400
    bundle_dir: str | None = None
    drill_fresh: Seconds | None = None


def load_web_settings(config: Consortium, source: str = "<config>") -> WebSettings:
    """Validate ``config.web``; errors name the file, the field path and the problem (exit 2)."""
    try:
        return WebSettings.model_validate(config.web)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in ("web", *first["loc"]))
        message = validation_message(first)
        raise ConfigError(N_("{source}: {loc}: {message_}"), source=source, loc=loc, message_=message) from None


def bundle_root(settings: WebSettings, config_dir: Path | None) -> Path:
    """Where built bundles wait for download: ciphertext only, removed on deletion confirmation."""
    if settings.bundle_dir:
        path = Path(settings.bundle_dir)
        return path if path.is_absolute() or config_dir is None else config_dir / path
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "bcpctl" / "web-bundles"
