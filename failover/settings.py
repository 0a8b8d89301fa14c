"""The ``drills:`` section of ``bcpctl.yaml``, validated here rather than in ``dc/``.

``dc.config.Consortium`` keeps ``drills`` free-form so the bottom layer need not know about
drills; this model gives it a shape and the same one-line errors as the rest of the file
(``FILE: drills.blackouts.0.start: ...``). Example::

    drills:
      workers: 2
      max_age: 30d            # flag a system not drilled successfully for this long
      timeout: 4h             # default: the largest RTO target among the drilled systems
      steady_state: {command: "pg_isready -h 127.0.0.1 -p 5432", interval: 30s}
      sandbox_netns: bcp-drill
      blackouts:
        - {name: 確定申告, start: "02-01", end: "03-31"}
        - {name: 年度末・年度初めの異動, start: "03-20", end: "04-15"}
        - {name: 参議院議員通常選挙, start: "2025-07-03", end: "2025-07-21"}
      smoke_expect: {goka-juki: "1"}
      failover:
        two_person: true
        approvers: [kacho-sato]      # credentials under approvers: (bcpctl approver enroll)
        hooks: ansible
        second_copy: tsukuba-dc      # while failed over, replicate there (default: the primary)
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dc.config import Consortium
from dc.configtypes import ApproverName, Identifier, Seconds
from dc.errors import N_, ConfigError
from dc.validation import validation_message

_RECURRING = re.compile(r"^(\d{2})-(\d{2})$")
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_day(text: str) -> str:
    text = str(text)
    if m := _RECURRING.match(text):
        # 2024 is a leap year, so 02-29 is accepted as a recurring day.
        date(2024, int(m[1]), int(m[2]))
    elif _DATED.match(text):
        date.fromisoformat(text)
    else:
        raise ValueError("use MM-DD for a yearly period or YYYY-MM-DD for a dated one")
    return text


DayText = Annotated[str, Field(min_length=5)]


class Blackout(_Model):
    """A period when no drill may run (busy counters, elections): both ends included, JST."""

    name: str
    start: DayText
    end: DayText

    @model_validator(mode="after")
    def _same_form(self) -> Blackout:
        try:
            _check_day(self.start)
            _check_day(self.end)
        except ValueError as exc:
            raise ValueError(f"blackout '{self.name}': {exc}") from None
        if bool(_RECURRING.match(self.start)) != bool(_RECURRING.match(self.end)):
            raise ValueError(f"blackout '{self.name}': start and end must both be MM-DD or both YYYY-MM-DD")
        if _DATED.match(self.start) and self.end < self.start:
            raise ValueError(f"blackout '{self.name}': end {self.end} is before start {self.start}")
        return self

    @property
    def recurring(self) -> bool:
        return bool(_RECURRING.match(self.start))


class SteadyState(_Model):
    """A health check of production that must keep passing while a drill runs (else abort)."""

    command: str = Field(min_length=1)
    interval: Annotated[Seconds, Field(ge=1)] = 30
    timeout: Annotated[Seconds, Field(ge=1)] = 10


class FailoverSettings(_Model):
    #: a failover needs a second person's approval besides the operator's ``--yes``.
    two_person: bool = False
    #: who may approve a failover; each one's credential is under ``approvers:`` (bcpctl approver enroll).
    approvers: tuple[ApproverName, ...] = ()
    #: ``ansible`` runs playbooks/fence-site.yml etc.; ``manual`` means operators switch by hand.
    hooks: Literal["ansible", "manual"] = "ansible"
    #: where the second copy of the active site's repository goes while production runs at an
    #: offsite site (failover/activesite.py); default: the primary, once it is rebuilt.
    second_copy: Identifier | None = None

    @field_validator("approvers", mode="before")
    @classmethod
    def _names(cls, approvers: object) -> object:
        if isinstance(approvers, dict):
            # The former form mapped names to SHA-256 digests of tokens: a fast hash, and a
            # check that did not bind the approval to what it approved.
            raise ValueError(
                "list approver names; their credentials go under approvers: ('bcpctl approver enroll'), "
                "token digests are no longer accepted"
            )
        return approvers

    @model_validator(mode="after")
    def _someone_to_approve(self) -> FailoverSettings:
        if self.two_person and not self.approvers:
            raise ValueError("two_person needs at least one entry under approvers")
        return self


class DrillSettings(_Model):
    workers: int = Field(default=2, ge=1, le=32)
    timeout: Seconds | None = None
    max_age: Seconds = 30 * 86400
    steady_state: SteadyState | None = None
    sandbox_netns: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    blackouts: tuple[Blackout, ...] = ()
    report_dir: str | None = None
    #: every run's report also as report.pdf (headless Chromium), the copy the 災害対策本部 files
    report_pdf: bool = False
    smoke_expect: dict[Identifier, str] = {}
    failover: FailoverSettings = FailoverSettings()


def drill_settings(config: Consortium, source: str = "<config>") -> DrillSettings:
    """The validated ``drills:`` section; a bad one is a :class:`ConfigError` naming the field."""
    try:
        settings = DrillSettings.model_validate(config.drills)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(["drills", *(str(p) for p in first["loc"])])
        message = validation_message(first)
        raise ConfigError(N_("{source}: {loc}: {message_}"), source=source, loc=loc, message_=message) from None
    second = settings.failover.second_copy
    if second is not None and second not in config.sites:
        raise ConfigError(
            N_("{source}: drills.failover.second_copy: unknown site '{second}'"), source=source, second=second
        )
    for system_id in settings.smoke_expect:
        if system_id not in config.systems:
            raise ConfigError(
                N_("{source}: drills.smoke_expect.{system_id}: unknown system '{system_id}'"),
                source=source,
                system_id=system_id,
            )
    return settings
