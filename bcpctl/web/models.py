"""The API's request and response bodies: strict (unknown keys refused), bounded, documented.

Sizes are bounded so that no field can carry a payload (a disaster id is not a file), and
free text refuses control characters so that audit entries stay one line.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, SecretStr

from victim_support.policy import BASES, FORMATS, PURPOSES

Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Note = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# Literals computed from the law tables, so the OpenAPI enums follow them; mypy accepts only
# literal values written out in a Literal[...] (valid-type), pydantic reads these at run time.
Basis = Literal[tuple(BASES)]  # type: ignore[valid-type]
Purpose = Literal[tuple(PURPOSES)]  # type: ignore[valid-type]
Format = Literal[FORMATS]  # type: ignore[valid-type]
FieldName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")]
Area = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$")]
#: a time in a response: an aware datetime to the pages (which show it in JST), ISO 8601 with
#: its offset in JSON like every machine output of bcpctl (``2026-11-29T13:18:40+00:00``)
Instant = Annotated[datetime, PlainSerializer(lambda when: when.isoformat(), return_type=str, when_used="json")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitRequest(_Strict):
    """An export request as the partner API and the portal form receive it.

    The wire shape of :class:`victim_support.policy.NewRequest`, kept apart for two reasons:
    it has no partner (the partner is whoever signed the request or holds the token: a field
    would let one partner file for another), and every size is bounded and documented in the
    OpenAPI schema, since it is untrusted input. :func:`bcpctl.web.submission.submit` turns it
    into a ``NewRequest``.
    """

    tenant: Ident = Field(description="Municipality whose residents are requested (a tenant id).")
    disaster_id: Text = Field(description="Disaster identifier (災害名 or GLIDE number).")
    disaster_date: date
    basis: Basis = Field(description="Legal basis code.")  # type: ignore[valid-type]
    purposes: list[Purpose] = Field(min_length=1, max_length=len(PURPOSES))  # type: ignore[valid-type]
    fields: list[FieldName] = Field(min_length=1, max_length=40, description="Field keys or groups (address, damage).")
    areas: list[Area] = Field(default=[], max_length=1000, description="町字 ids or names from the catalog.")
    all_areas: bool = False
    support_only: bool = Field(default=False, description="Only 避難行動要支援者 (DMA-49-11-3).")
    retention_days: int | None = Field(default=None, ge=1, le=3650)
    formats: list[Format] = Field(default=[], max_length=2)
    requested_by: Text = Field(description="Name of the requesting officer.")
    ledger_waiver: Note = Field(
        default="", description="Why no 被災者台帳 entry of the disaster is needed although the purpose would use it."
    )


class NotesUpload(_Strict):
    """PFIF 1.4 notes a partner returns, with its SSH signature over the document's exact bytes (UTF-8)."""

    notes: str = Field(max_length=1 << 20, description="The PFIF 1.4 document of top-level notes.")
    signature: str = Field(
        max_length=4096, description="ssh-keygen -Y sign -n bcpctl-pfif-notes over the document, armored."
    )


class NotesReceived(BaseModel):
    stored: int
    already_recorded: int
    changed: list[str]


class Deletion(_Strict):
    deleted_by: Text = Field(description="Who deleted every copy.")
    note: Note = ""


#: the approver's own secret, checked exactly as ``bcpctl export approve`` checks it (never stored or logged).
ApproverSecret = Annotated[SecretStr | None, Field(default=None, description="The approver's own secret.")]


class Approve(_Strict):
    reason: Note = Field(default="", description="Required for an alternate approver: why the tenant cannot act.")
    approver_secret: ApproverSecret = None


class Deny(_Strict):
    reason: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$")]
    approver_secret: ApproverSecret = None


class DrillStart(_Strict):
    mode: Literal["readiness", "isolated"] = "isolated"
    tenant: Ident | None = None


class TokenIssue(_Strict):
    label: Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


class Scope(BaseModel):
    areas: list[str]
    all_areas: bool
    support_only: bool


class DeliveryView(BaseModel):
    built_at: Instant
    expires_at: Instant
    downloads: int
    deleted_at: Instant | None
    deleted_by: str | None


class RequestView(BaseModel):
    """A request as its partner sees it (approver names are the tenant's business)."""

    id: str
    tenant: str
    partner: str
    status: str
    basis: str
    purposes: list[str]
    requested_fields: list[str]
    fields: list[str]
    scope: Scope
    retention_days: int
    formats: list[str]
    requested_by: str
    created_at: Instant
    valid_until: Instant
    approvals: int
    required_approvals: int
    denial_reason: str | None
    delivery: DeliveryView | None


class ApprovalView(BaseModel):
    approver: str
    role: str
    at: Instant
    reason: str


class EstimateView(BaseModel):
    """What the check against the replica found when the request was filed (shown to approvers)."""

    site: str
    snapshot: str
    as_of: Instant
    rows: int
    excluded_protected: int
    areas: int
    ledger_required: bool
    ledger_entries: int


class OperatorRequestView(RequestView):
    approved_by: list[ApprovalView]
    denial: str | None
    builds: int
    #: ``None``: filed without the check against the replica (it cannot be approved)
    estimate: EstimateView | None = None
    ledger_waiver: str = ""


class Rejection(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    reasons: list[str] = []


class JobView(BaseModel):
    """A drill's run record (``drill_runs``); ``id`` and ``run_id`` both name the run.

    ``status``: running, passed, failed, aborted or killed (its process died).
    """

    id: str
    kind: str
    mode: str
    tenant: str | None
    requested_by: str | None
    requested_at: Instant
    status: str
    run_id: str
    finished_at: Instant | None
    error: str | None


class IssuedTokenView(BaseModel):
    id: str
    partner: str
    label: str
    expires_at: Instant
    token: str = Field(description="Shown once; only its SHA-256 is stored.")


class TokenView(BaseModel):
    id: str
    partner: str
    label: str
    issued_by: str
    issued_at: Instant
    expires_at: Instant
    revoked_at: Instant | None


class Whoami(BaseModel):
    name: str
    roles: list[str]
    via: str


Json = dict[str, Any]
