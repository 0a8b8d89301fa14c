"""The consortium configuration, ``bcpctl.yaml``.

One file describes the consortium: its sites, tenants (municipalities), business systems with
their recovery targets, hosts, partner municipalities and schedules. Recovery targets come
from each municipality's own business-impact analysis (ICT-BCP ステップ11), so they are
configuration, never constants. Secrets never live here: only the names of environment
variables or files that hold them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dc.configtypes import (
    PFIF_DOMAIN,
    ApproverCredential,
    ApproverName,
    Command,
    Dsn,
    Identifier,
    LgCode,
    Seconds,
)
from dc.crossfields import FieldProblem, cross_field_problems
from dc.errors import N_, ConfigError, Message, Reason, os_reason
from dc.siteenv import SITE_ENV
from dc.sourcespec import Reentry, Source
from dc.validation import validation_message

CONFIG_ENV = "BCPCTL_CONFIG"
#: the control-plane RPO when neither ``control_plane.rpo`` nor any system RPO is configured
DEFAULT_CONTROL_RPO = 900


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ControlServer(_Model):
    """``sites.<name>.control_server``: the PostgreSQL server of this site's ``control_db``, as
    bcpctl runs it for the streaming standby (``bcpctl control standby init``, failover, failback).

    bcpctl runs PostgreSQL's programs on the machine it runs on, so these describe the server as
    seen from the controller that sets it up (failover.control_server). Credentials never sit
    here: the replication connection uses the ``control_db`` user, its password from the
    ``.pgpass`` of ``run_as`` and of the server's own account.
    """

    #: the server's data directory: pg_basebackup writes a new standby into it, pg_rewind rewinds it
    data_dir: str
    #: starts the server and returns once it accepts connections (``systemctl start postgresql@15-main``)
    start: Command
    #: stops it with a fast shutdown (``systemctl stop postgresql@15-main``)
    stop: Command
    #: the account owning ``data_dir``: pg_basebackup, pg_rewind and pg_controldata run as it
    #: (``runuser`` when bcpctl runs as root, ``sudo -n`` otherwise)
    run_as: str | None = None
    #: where PostgreSQL's programs are (default: the newest ``/usr/lib/postgresql/*/bin``, then ``PATH``)
    bin_dir: str | None = None
    #: how long to wait for the standby to stream and catch up
    timeout: Annotated[Seconds, Field(gt=0)] = 300


class Site(_Model):
    """A data center holding one repository of the consortium."""

    name: str | None = None
    prefecture: str
    role: Literal["primary", "offsite"] = "primary"
    repository: str
    #: known_hosts file pinning the SSH host keys of this site's hosts and SFTP servers.
    known_hosts: str | None = None
    #: S3 Object Lock retention for objects written to this site (0 = no lock).
    object_lock_days: int = Field(default=0, ge=0)
    #: Ed25519 public key (hex) the primary's signed manifest must verify with; pinned on
    #: first replication when absent.
    manifest_public_key: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    #: PEM file of the Ed25519 key this site's controller signs its control-state copies with
    #: (``bcpctl control keygen``); the repository key does not give it.
    control_signing_key_file: str | None = None
    #: Ed25519 public key (hex) a control-state copy shipped from this site must be signed with
    #: to be promoted; without one, copies are promoted unauthenticated (with a warning).
    control_public_key: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    #: how long an object deleted at the source stays at this site before replication removes it.
    delete_delay: Seconds = 7 * 86400
    #: where drills restore at this site (sandbox databases and directories).
    drill_dsn: Dsn | None = None
    drill_dir: str | None = None
    #: this site's control database (DESIGN "The control plane is part of what must survive");
    #: default: the top-level ``control_db``, i.e. the same location on this site's own machines.
    control_db: Dsn | None = None
    #: the PostgreSQL server of ``control_db``, where bcpctl keeps it a streaming standby
    control_server: ControlServer | None = None
    #: the passphrase file that opens this site's repository (its operators' own key slot);
    #: default: ``secrets.password_file`` / ``secrets.password_env``.
    password_file: str | None = None
    #: the key file (``bcpctl key add --new-key-file``) ``wal push``/``wal get`` unlock this
    #: site's repository with on a database host; default: ``secrets.key_file``.
    key_file: str | None = None


#: a DNS name in lower case (PFIF record ids begin with the domain of their home repository)
class Tenant(_Model):
    """A member municipality."""

    name: str
    lg_code: LgCode
    population: int = Field(gt=0)
    #: the home repository's domain for PFIF record ids (``domain/unique``, PFIF 1.4 §2.1), e.g. the
    #: municipality's own domain: who the town is, so it sits with its name and code (PFIF files and
    #: returned notes need it)
    pfif_domain: str | None = Field(default=None, pattern=PFIF_DOMAIN, max_length=253)
    #: the day a town that joined late (後乗り) started, a JST date: it pays from that month on
    #: (``tenant join --from``; dc/proration.py)
    joined: date | None = None


class System(_Model):
    """A business system of one tenant, with its recovery targets."""

    tenant: Identifier
    business: str
    #: the 調達業務 number of the consortium's procurement (1, 1-2, 11-1, …; "-" for the extras)
    number: str | None = None
    #: the 専門部会 of the 運営協議会 whose members own this business
    group: Literal["住民", "税", "福祉", "総合"] | None = None
    tier: int = Field(ge=1, le=4)
    rpo: Seconds | None = None
    rto: Seconds | None = None
    source: Source
    depends_on: tuple[Identifier, ...] = ()
    #: cron expression; derived from the RPO when absent.
    schedule: str | None = None
    #: run last in every drill and failover, e.g. a SQL query that must succeed.
    smoke: str | None = None
    #: where a failover restores this system at the offsite site.
    restore_dsn: Dsn | None = None
    restore_dir: str | None = None
    #: postgres-wal: tables (``schema.table``) whose lost rows become the re-entry worklist
    reentry: dict[str, Reentry] = Field(default_factory=dict)
    #: a host of ``hosts`` whose ``bcpctl serve --queue --host NAME`` runs this system's backups
    #: (e.g. the database's own machine, so the data path never crosses the controller); queue
    #: mode only — a controller that runs jobs itself runs them where it is.
    run_on: Identifier | None = None


class Host(_Model):
    """A managed machine in a rack of a site."""

    site: Identifier
    rack: str | None = None
    role: str
    address: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str = "bcp"
    key_file: str | None = None
    tenants: tuple[Identifier, ...] = ()
    #: extra Ansible host variables, e.g. ``bcp_root`` (the directory the playbooks treat as ``/``).
    vars: dict[str, Any] = {}


class Partner(_Model):
    """A neighbouring municipality that may request victim-support exports."""

    name: str
    lg_code: LgCode
    age_recipient: str = Field(pattern=r"^age1[0-9a-z]{58}$")
    verify_key: str | None = None


class Schedules(_Model):
    backup: str | None = None
    replicate: str | None = "*/5 * * * *"
    check: str | None = "30 2 * * *"
    drill: str | None = "0 3 * * sun"
    health: str | None = "*/1 * * * *"


class ControlPlane(_Model):
    """``control_plane:``: how fresh the offsite's copy of the control state must stay.

    The control state (drill history, export requests and approvals, partners and tokens, the
    audit chain, job history) is what bcpctl needs to carry on at the offsite after a disaster,
    so it has a recovery point objective like every system: by default the shortest system RPO.
    """

    #: the offsite's copy of the control state is never older than this while replication runs
    rpo: Annotated[Seconds, Field(gt=0)] | None = None
    #: how long shipped control-state copies are kept (default: the RPO window plus a day)
    keep: Annotated[Seconds, Field(gt=0)] | None = None


class Secrets(_Model):
    """Where secrets come from; never the secrets themselves."""

    password_env: str = "BCPCTL_PASSWORD"
    password_file: str | None = None
    #: a database host's key file (backup/keyfile.py): ``wal push``/``wal get`` unlock with it
    #: instead of the passphrase, so they skip its Argon2id derivation
    key_file: str | None = None


class Consortium(_Model):
    """The whole ``bcpctl.yaml``."""

    consortium: Identifier
    #: the control database; once loaded, the one of the site this bcpctl runs at
    #: (``sites.<name>.control_db``, picked by ``$BCPCTL_SITE``, default the primary)
    control_db: Dsn | None = None
    sites: dict[Identifier, Site]
    tenants: dict[Identifier, Tenant]
    systems: dict[Identifier, System] = {}
    hosts: dict[Identifier, Host] = {}
    partners: dict[Identifier, Partner] = {}
    schedules: Schedules = Schedules()
    secrets: Secrets = Secrets()
    control_plane: ControlPlane = ControlPlane()
    #: approver name -> public credential; exports and failover approvals are verified against these.
    approvers: dict[ApproverName, ApproverCredential] = {}
    #: free-form sections that later subsystems validate themselves (costs, drills, exports, web).
    costs: dict[str, Any] = {}
    drills: dict[str, Any] = {}
    exports: dict[str, Any] = {}
    #: the web surface (partner portal, operator dashboard), validated by bcpctl/web/settings.py.
    web: dict[str, Any] = {}

    @field_validator("sites")
    @classmethod
    def _one_primary(cls, sites: dict[str, Site]) -> dict[str, Site]:
        primaries = [name for name, site in sites.items() if site.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(f"exactly one site must have role: primary (found {len(primaries)})")
        return sites

    @model_validator(mode="after")
    def _references_exist(self) -> Consortium:
        if problems := cross_field_problems(self):
            raise FieldProblem(*problems[0])
        return self

    @property
    def primary_site(self) -> str:
        return next(name for name, site in self.sites.items() if site.role == "primary")

    @property
    def offsite_sites(self) -> list[str]:
        return [name for name, site in self.sites.items() if site.role == "offsite"]

    @property
    def control_plane_rpo(self) -> int:
        """``control_plane.rpo``, else the shortest system RPO, else :data:`DEFAULT_CONTROL_RPO`."""
        if self.control_plane.rpo is not None:
            return self.control_plane.rpo
        rpos = [s.rpo for s in self.systems.values() if s.rpo is not None]
        return min(rpos) if rpos else DEFAULT_CONTROL_RPO

    def control_db_of(self, site: str) -> str | None:
        """The control database of ``site``: its own ``control_db``, else the top-level one."""
        if site not in self.sites:
            raise ConfigError(N_("unknown site '{site}' (known: {sites})"), site=site, sites=", ".join(self.sites))
        return self.sites[site].control_db or self.control_db

    def at_site(self, site: str) -> Consortium:
        """This configuration as bcpctl reads it at ``site``: ``control_db`` is that site's own.

        Every site's ``control_db`` is spelled out first, so the other sites keep theirs.
        """
        sites = {
            name: spec.model_copy(update={"control_db": self.control_db_of(name)}) for name, spec in self.sites.items()
        }
        return self.model_copy(update={"control_db": self.control_db_of(site), "sites": sites})

    def system(self, system_id: str) -> System:
        try:
            return self.systems[system_id]
        except KeyError:
            raise ConfigError(
                N_("unknown system '{system_id}' (known: {systems})"),
                system_id=system_id,
                systems=", ".join(self.systems),
            ) from None


def read_config(path: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The configuration's resolved path (``path``, ``$BCPCTL_CONFIG`` or ``./bcpctl.yaml``) and text."""
    resolved = Path(path or os.environ.get(CONFIG_ENV) or "bcpctl.yaml").resolve()
    try:
        return resolved, resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(N_("{resolved}: configuration file not found"), resolved=resolved) from None
    except OSError as exc:
        raise ConfigError(
            N_("{resolved}: cannot read: {strerror}"), resolved=resolved, strerror=os_reason(exc)
        ) from None


def yaml_problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line (when known) and the problem of a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    # PyYAML's words name its parser's state; in another language the line number says where
    shown = Reason(problem, N_("invalid YAML")) if problem else Message(N_("invalid YAML"))
    return (mark.line + 1 if mark else None), shown


def load_config(path: str | os.PathLike[str] | None = None) -> tuple[Consortium, Path]:
    """Read and validate the configuration; return it with its resolved path.

    Relative paths inside the file are resolved by the caller against ``path.parent``.
    """
    resolved, text = read_config(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        where = Message(N_(" line {line}"), line=line) if line else ""
        raise ConfigError(
            N_("{resolved}:{where}: {problem}"), resolved=resolved, where=where, problem=problem
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(N_("{resolved}: expected a mapping at the top level"), resolved=resolved)
    return parse_config(raw, source=str(resolved)), resolved


def parse_config(raw: dict[str, Any], source: str = "<config>") -> Consortium:
    """Validate an already-parsed mapping; errors name ``source`` and the field path."""
    try:
        config = Consortium.model_validate(raw)
    except ValidationError as exc:
        (loc, message), *rest = config_errors(exc, raw)
        more = Message(N_(" (and {count} more: bcpctl config check lists them)"), count=len(rest)) if rest else ""
        raise ConfigError(
            N_("{source}: {map}: {message_}{more}"),
            source=source,
            map=".".join(map(str, loc)) or Message(N_("(top level)")),
            message_=message,
            more=more,
        ) from None
    return config.at_site(local_site(config))


def local_site(config: Consortium) -> str:
    """``$BCPCTL_SITE`` (checked against the configuration), else the primary."""
    site = os.environ.get(SITE_ENV) or config.primary_site
    if site not in config.sites:
        raise ConfigError(
            N_("${SITE_ENV} names unknown site '{site}' (known: {sites})"),
            SITE_ENV=SITE_ENV,
            site=site,
            sites=", ".join(config.sites),
        )
    return site


Loc = tuple[str | int, ...]


def config_errors(exc: ValidationError, raw: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Every field error of ``exc``, then every cross-field problem of ``raw``: (field path, message).

    Pydantic reports the first dangling reference, and only once every field is valid: the
    references are computed from the raw file instead, so they show beside field errors.
    """
    fields = [field_error(e) for e in exc.errors() if not isinstance(e.get("ctx", {}).get("error"), FieldProblem)]
    return [*fields, *cross_field_problems(raw)]


def field_error(error: Mapping[str, Any], prefix: Loc = ()) -> tuple[Loc, str]:
    """One pydantic error as a field path (under ``prefix``) and a message for people."""
    loc: Loc = (*prefix, *error["loc"])
    message = validation_message(error)
    if loc and loc[-1] == "[key]":  # the name of an entry is wrong, not its value
        loc, message = loc[:-1], Message(N_("the name: {message_}"), message_=message)
    return loc, message
