"""The ``exports:`` section of ``bcpctl.yaml``, validated here (the consortium model keeps it free-form).

Example::

    exports:
      approvals: {DMA-90-4-1-3: 2, APPI-69-2-3: 2, DMA-49-11-3: 1}   # two-person rule per basis
      alternate_approvers: [ibaraki-pref-bosai]   # e.g. the prefecture, for a tenant that cannot act
      request_valid_for: 7d
      retention_days: 90
      tenants:
        goka:
          approvers: [goka-somu-suzuki, goka-somu-tanaka]
          signing_key_file: /etc/bcpctl/goka-export.ed25519    # never the key itself
          pseudonym_secret_file: /etc/bcpctl/goka-pseudonym.secret

Secrets are never in this file: only where to read them. Without a setting the signing key
comes from ``$BCPCTL_EXPORT_SIGNING_KEY_<TENANT>`` and the pseudonym secret from
``$BCPCTL_EXPORT_SECRET_<TENANT>`` (tenant id upper-cased, ``-`` as ``_``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dc.config import Consortium
from dc.configtypes import PFIF_DOMAIN, ApproverName, Identifier, Seconds
from dc.errors import N_, ConfigError
from dc.validation import validation_message
from victim_support.policy import BASES

log = logging.getLogger("bcpctl.config")
#: deprecation warnings already given in this process (settings are loaded several times per command)
_WARNED: set[str] = set()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantExports(_Model):
    """Per-tenant export settings."""

    #: the tenant's 住民基本台帳 system; default: its one system whose business is 住民基本台帳.
    registry_system: Identifier | None = None
    approvers: tuple[ApproverName, ...] = ()
    #: approvers who may act for this tenant only (in addition to the consortium-wide ones).
    alternate_approvers: tuple[ApproverName, ...] = ()
    signing_key_file: str | None = None
    signing_key_env: str | None = None
    pseudonym_secret_file: str | None = None
    pseudonym_secret_env: str | None = None
    #: the tenant's own age recipient: every bundle is also encrypted to it (X keeps a readable copy).
    escrow_recipient: str | None = Field(default=None, pattern=r"^age1[0-9a-z]{58}$")
    #: deprecated here: ``tenants.<id>.pfif_domain`` (:func:`load_export_settings` moves it there and
    #: every reader finds the effective value in this field)
    pfif_domain: str | None = Field(default=None, pattern=PFIF_DOMAIN, max_length=253)


class LookupRule(_Model):
    """Finding one evacuee (``bcpctl export lookup``): who may, for which disasters, how often, what they see.

    A lookup is pre-authorised under this rule — no per-lookup approval — for a partner listed
    in ``partners`` and a disaster declared here; a partner whose ``approval`` is ``approval``
    waits, per lookup, for one approver of the person's home town
    (:mod:`victim_support.lookupapproval`); anything else is refused. The fields are judged
    by the law tables under ``basis`` for the purpose 避難者の特定 like any request's.
    """

    partners: tuple[Identifier, ...] = ()
    #: declared disasters (ids as export requests name them)
    disasters: tuple[str, ...] = ()
    basis: str = "DMA-90-4-1-3"
    fields: tuple[str, ...] = ("name", "name_kana", "birth_date", "sex", "machiaza_name")
    #: per partner: ``pre-authorised`` (as if listed in ``partners``) or ``approval`` (one approver
    #: of the home town per lookup); a partner listed in ``partners`` and here follows this
    approval: dict[Identifier, Literal["pre-authorised", "approval"]] = {}
    #: how long a lookup waits for its approval, and its approval stays usable
    approval_valid_for: Seconds = 3600
    per_official_per_hour: int = Field(default=10, ge=1, le=1000)
    per_partner_per_hour: int = Field(default=200, ge=1, le=100000)
    max_candidates: int = Field(default=3, ge=1, le=10)
    #: every answer, hit or miss, takes this long (a longer one is reported as not padded)
    answer_seconds: float = Field(default=5.0, ge=0.0, le=120.0)


class RehearsalRule(_Model):
    """How fast a rehearsed export must deliver and how often it must be rehearsed (monitoring alerts on both)."""

    #: from the rehearsal's start to the bundle in the partner's inbox: the export's RTO
    rto: Seconds = 2 * 3600
    #: each exporting tenant's newest passed rehearsal, with any partner, must be younger than this
    max_age: Seconds = 92 * 86400


class ExportSettings(_Model):
    """The whole ``exports:`` section."""

    #: distinct approvers each basis needs (two-person rule); bases not listed need ``default_approvals``.
    approvals: dict[str, int] = {}
    default_approvals: int = Field(default=1, ge=1, le=5)
    alternate_approvers: tuple[ApproverName, ...] = ()
    request_valid_for: Seconds = 7 * 86400
    retention_days: int = Field(default=90, ge=1)
    max_retention_days: int = Field(default=90, ge=1)
    #: the site builds read from by default (default: the first offsite site).
    site: Identifier | None = None
    tenants: dict[Identifier, TenantExports] = {}
    #: finding one evacuee; ``None``: lookups are refused
    lookups: LookupRule | None = None
    rehearsal: RehearsalRule = RehearsalRule()

    def tenant(self, tenant_id: str) -> TenantExports:
        return self.tenants.get(tenant_id, TenantExports())

    def required_approvals(self, basis: str) -> int:
        return self.approvals.get(basis, self.default_approvals)


def load_export_settings(config: Consortium, source: str = "<config>") -> ExportSettings:
    """Validate ``config.exports``; errors name the file, the field path and the problem (exit 2)."""
    try:
        settings = ExportSettings.model_validate(config.exports)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in ("exports", *first["loc"]))
        message = validation_message(first)
        raise ConfigError(N_("{source}: {loc}: {message_}"), source=source, loc=loc, message_=message) from None
    for basis, count in settings.approvals.items():
        if basis not in BASES:
            raise ConfigError(
                N_("{source}: exports.approvals.{basis}: unknown legal basis (known: {BASES})"),
                source=source,
                basis=basis,
                BASES=", ".join(BASES),
            )
        if not 1 <= count <= 5:
            raise ConfigError(
                N_("{source}: exports.approvals.{basis}: must be between 1 and 5"), source=source, basis=basis
            )
    if settings.retention_days > settings.max_retention_days:
        raise ConfigError(N_("{source}: exports.retention_days: exceeds max_retention_days"), source=source)
    if settings.site is not None and settings.site not in config.sites:
        raise ConfigError(N_("{source}: exports.site: unknown site '{site}'"), source=source, site=settings.site)
    if settings.lookups is not None and settings.lookups.basis not in BASES:
        raise ConfigError(
            N_("{source}: exports.lookups.basis: unknown legal basis (known: {BASES})"),
            source=source,
            BASES=", ".join(BASES),
        )
    for tenant_id, tenant in settings.tenants.items():
        if tenant_id not in config.tenants:
            raise ConfigError(
                N_("{source}: exports.tenants.{tenant_id}: unknown tenant"), source=source, tenant_id=tenant_id
            )
        system = tenant.registry_system
        if system is not None and (system not in config.systems or config.systems[system].tenant != tenant_id):
            raise ConfigError(
                N_("{source}: exports.tenants.{tenant_id}.registry_system: '{system}' is not a system of {tenant_id}"),
                source=source,
                tenant_id=tenant_id,
                system=system,
            )
        if set(tenant.approvers) & set(settings.alternate_approvers + tenant.alternate_approvers):
            raise ConfigError(
                N_("{source}: exports.tenants.{tenant_id}: an approver cannot also be an alternate"),
                source=source,
                tenant_id=tenant_id,
            )
    return _with_pfif_domains(config, settings, source)


def _with_pfif_domains(config: Consortium, settings: ExportSettings, source: str) -> ExportSettings:
    """The PFIF domain of each tenant from ``tenants:``; the old place under ``exports.tenants`` is read
    with a warning, and the two places disagreeing is an error (which one do the partners know?)."""
    tenants = dict(settings.tenants)
    for tenant_id, tenant in config.tenants.items():
        old = tenants[tenant_id].pfif_domain if tenant_id in tenants else None
        if old and tenant.pfif_domain and old != tenant.pfif_domain:
            raise ConfigError(
                N_(
                    "{source}: exports.tenants.{tenant_id}.pfif_domain ({old}) disagrees with "
                    "tenants.{tenant_id}.pfif_domain ({pfif_domain}): keep only tenants.{tenant_id}.pfif_domain"
                ),
                source=source,
                tenant_id=tenant_id,
                old=old,
                pfif_domain=tenant.pfif_domain,
            )
        if old and not tenant.pfif_domain and (warning := f"{source}: {tenant_id}") not in _WARNED:
            _WARNED.add(warning)
            log.warning(
                "bcpctl: warning: %s: exports.tenants.%s.pfif_domain is deprecated: move it to tenants.%s.pfif_domain",
                source, tenant_id, tenant_id,
            )  # fmt: skip
        if tenant.pfif_domain and old != tenant.pfif_domain:
            tenants[tenant_id] = tenants.get(tenant_id, TenantExports()).model_copy(
                update={"pfif_domain": tenant.pfif_domain}
            )
    return settings.model_copy(update={"tenants": tenants}) if tenants != settings.tenants else settings


def registry_system(config: Consortium, settings: ExportSettings, tenant_id: str) -> str:
    """The tenant's 住民基本台帳 system id."""
    if tenant_id not in config.tenants:
        raise ConfigError(
            N_("unknown tenant '{tenant_id}' (known: {tenants})"),
            tenant_id=tenant_id,
            tenants=", ".join(config.tenants),
        )
    configured = settings.tenant(tenant_id).registry_system
    if configured:
        return configured
    found = [sid for sid, s in config.systems.items() if s.tenant == tenant_id and s.business == "住民基本台帳"]
    if len(found) != 1:
        raise ConfigError(
            N_(
                "tenant {tenant_id} has {n_found} 住民基本台帳 systems; set exports.tenants.{tenant_id}.registry_system"
            ),
            tenant_id=tenant_id,
            n_found=len(found),
        )
    return found[0]


def default_site(config: Consortium, settings: ExportSettings) -> str:
    """Where builds read by default: the configured site, else the first offsite site, else the primary."""
    if settings.site:
        return settings.site
    return (config.offsite_sites or [config.primary_site])[0]


def env_name(prefix: str, tenant_id: str) -> str:
    return f"{prefix}_{tenant_id.upper().replace('-', '_')}"


def resolve(path: str, config_dir: Path | None) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() or config_dir is None else config_dir / candidate
