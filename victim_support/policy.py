"""What each legal basis allows: pure, table-driven rules with no I/O, tested directly.

A request names one legal basis, one or more purposes, the fields and the rows (row class and
町字 scope) it wants. A field is exported only if the basis allows it AND at least one stated
purpose needs it (data minimisation, 個人情報保護法69条② "相当の理由"); anything else is
rejected with the reason. The codes and field sets follow research §7.3; each municipality's
法務 section must confirm them before real use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from dc.errors import N_, Message
from victim_support.fields import ALWAYS, FIELDS, NEVER_EXPORTED, column_order, expand

ADDRESS = ("pref", "city", "machiaza_id", "machiaza_name", "banchi", "katagaki", "postal_code")
PERSON = ("name", "name_fallback", "name_kana", "birth_date", "sex")

#: Row classes: every current resident in scope, or only 避難行動要支援者.
ALL_RESIDENTS = "all_residents"
SUPPORT_NEEDED = "support_needed"

FORMATS = ("cp932", "pfif")


@dataclass(frozen=True)
class BasisRule:
    law: str
    title: str
    fields: frozenset[str]
    purposes: frozenset[str]
    row_classes: frozenset[str]


BASES: dict[str, BasisRule] = {
    # 90条の4①三: 台帳情報 to 他の地方公共団体 for 援護; the 台帳 items of 90条の3②.
    "DMA-90-4-1-3": BasisRule(
        law="災害対策基本法第90条の4第1項第3号",
        title="被災者台帳情報の他の地方公共団体への提供 (被災者に対する援護)",
        fields=frozenset((*PERSON, *ADDRESS, "damage_status", "certificate_status", "aid_status")),
        purposes=frozenset(
            (
                "EVACUEE_IDENTIFICATION",
                "SAFETY_CONFIRMATION",
                "AID_DISTRIBUTION",
                "CERTIFICATE_APPLICATION_RELAY",
                "SHELTER_ADMIN",
            )
        ),
        row_classes=frozenset((ALL_RESIDENTS,)),
    ),
    # 49条の11③: 名簿情報 in a disaster, without consent, to protect life or body; 49条の10② items.
    "DMA-49-11-3": BasisRule(
        law="災害対策基本法第49条の11第3項",
        title="避難行動要支援者名簿情報の提供 (災害時, 本人同意不要)",
        fields=frozenset((*PERSON, *ADDRESS, "phone", "support_reason_code")),
        purposes=frozenset(("SAFETY_CONFIRMATION", "WELFARE_CHECK", "EVACUEE_IDENTIFICATION", "SHELTER_ADMIN")),
        row_classes=frozenset((SUPPORT_NEEDED,)),
    ),
    # 個人情報保護法69条②三: another public body, for its 法令事務, with 相当の理由.
    "APPI-69-2-3": BasisRule(
        law="個人情報の保護に関する法律第69条第2項第3号",
        title="住民基本台帳情報の他の行政機関等への提供 (法令事務, 相当の理由)",
        fields=frozenset((*PERSON, *ADDRESS, "relationship", "resident_since")),
        purposes=frozenset(
            ("EVACUEE_IDENTIFICATION", "SAFETY_CONFIRMATION", "SHELTER_ADMIN", "CERTIFICATE_APPLICATION_RELAY")
        ),
        row_classes=frozenset((ALL_RESIDENTS,)),
    ),
}

#: What each purpose can justify (a field must be needed by at least one requested purpose).
PURPOSES: dict[str, tuple[str, frozenset[str]]] = {
    "EVACUEE_IDENTIFICATION": ("避難者の特定", frozenset((*PERSON, *ADDRESS, "relationship", "resident_since"))),
    "SAFETY_CONFIRMATION": ("安否確認", frozenset((*PERSON, *ADDRESS, "relationship", "phone"))),
    "AID_DISTRIBUTION": ("支援物資・義援金等の配分", frozenset((*PERSON, *ADDRESS, "damage_status", "aid_status"))),
    "CERTIFICATE_APPLICATION_RELAY": (
        "罹災証明書の申請受付の取次 (交付は被災市町村)",
        frozenset((*PERSON, *ADDRESS, "damage_status", "certificate_status")),
    ),
    "WELFARE_CHECK": ("要配慮者の見守り・福祉的支援", frozenset((*PERSON, *ADDRESS, "phone", "support_reason_code"))),
    "SHELTER_ADMIN": ("避難所の運営", frozenset((*PERSON, *ADDRESS, "relationship"))),
}


@dataclass(frozen=True)
class Scope:
    """Which rows: listed 町字 (names or ids) or all of them, optionally 要支援者 only."""

    areas: tuple[str, ...] = ()
    all_areas: bool = False
    support_only: bool = False

    @property
    def row_class(self) -> str:
        return SUPPORT_NEEDED if self.support_only else ALL_RESIDENTS


@dataclass(frozen=True)
class NewRequest:
    """What a partner asks for, before the law tables judge it: one shape for every way in.

    ``bcpctl export request``, the partner API and the portal form each build one; the store
    judges and files it (:func:`victim_support.store.create_request`), and a build judges the
    stored request again as it was asked (:func:`victim_support.request.as_asked`). Two shapes
    stay apart for a reason: the web's ``SubmitRequest`` (the untrusted wire body: no partner,
    who is whoever signed it, and every size bounded) and the stored ``ExportRequest`` (what
    was decided: its id, the exported columns, validity and status).

    ``retention_days`` is ``None`` until the store fills in the configured default.
    """

    partner: str
    tenant: str
    disaster_id: str
    disaster_date: date
    basis: str
    purposes: tuple[str, ...]
    fields: tuple[str, ...]
    scope: Scope
    requested_by: str
    retention_days: int | None = None
    formats: tuple[str, ...] = ()
    #: who actually filed it, as proven by the channel: ``requested_by`` is the partner officer's
    #: name as told (free text); the audit entry binds it to ``partner:<id>`` (a token) or, when
    #: ``None``, to the OS account of the real uid that ran ``bcpctl export request``
    filed_by: str | None = None
    #: why the request needs no 被災者台帳 entry of its disaster although its purpose would (see prefiling)
    ledger_waiver: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...] = ()
    #: the exported columns in file order (ALWAYS first), when allowed.
    fields: tuple[str, ...] = field(default_factory=tuple)

    def message(self) -> str:
        if not self.reasons:
            return Message(N_("request allowed"))
        more = Message(N_(" (and {count} more)"), count=len(self.reasons) - 1) if len(self.reasons) > 1 else ""
        return Message(N_("request rejected: {reason}{more}"), reason=self.reasons[0], more=more)


def evaluate(
    spec: NewRequest, *, partner_lg_code: str, tenant_lg_code: str, today: date, max_retention_days: int
) -> Decision:
    """Allow or reject a request; every rejection reason names the rule it breaks.

    The municipalities are compared by their 地方公共団体コード (``*_lg_code``): a partner and a
    tenant of the consortium with different ids may be the same municipality.
    """
    reasons: list[str] = []
    rule = BASES.get(spec.basis)
    if rule is None:
        return Decision(
            False,
            (
                Message(
                    N_("unknown legal basis '{basis}' (allowed: {BASES})"), basis=spec.basis, BASES=", ".join(BASES)
                ),
            ),
        )
    if partner_lg_code == tenant_lg_code:
        reasons.append(Message(N_("a municipality cannot request its own residents through a victim-support export")))
    if not spec.disaster_id.strip():
        reasons.append(Message(N_("a disaster id is required")))
    if spec.disaster_date > today:
        reasons.append(Message(N_("disaster date {disaster_date} is in the future"), disaster_date=spec.disaster_date))
    reasons += _purpose_reasons(spec, rule)
    selected, field_reasons = _field_reasons(spec, rule)
    reasons += field_reasons
    if spec.scope.row_class not in rule.row_classes:
        if spec.scope.support_only:
            reasons.append(
                Message(
                    N_("{basis} covers all residents in scope; 要支援者-only lists need DMA-49-11-3"), basis=spec.basis
                )
            )
        else:
            reasons.append(
                Message(
                    N_("{basis} covers only 避難行動要支援者 rows (49条の11③): add --support-only"), basis=spec.basis
                )
            )
    if spec.scope.all_areas and spec.scope.areas:
        reasons.append(Message(N_("give either 町字 names or all areas, not both")))
    if not spec.scope.all_areas and not spec.scope.areas:
        reasons.append(Message(N_("the scope names no 町字 (list the affected 町字, or all areas)")))
    if spec.retention_days is None:
        reasons.append(Message(N_("a retention period is required")))
    elif not 1 <= spec.retention_days <= max_retention_days:
        reasons.append(
            Message(
                N_("retention of {retention_days} days is outside 1..{max_retention_days}"),
                retention_days=spec.retention_days,
                max_retention_days=max_retention_days,
            )
        )
    for fmt in spec.formats:
        if fmt not in FORMATS:
            reasons.append(
                Message(N_("unknown format '{fmt}' (optional formats: {FORMATS})"), fmt=fmt, FORMATS=", ".join(FORMATS))
            )
    if "pfif" in spec.formats and "name" not in selected:
        reasons.append(Message(N_("PFIF needs the name field (full_name is mandatory in PFIF 1.4)")))
    if reasons:
        return Decision(False, tuple(reasons))
    return Decision(True, (), (*ALWAYS, *(f for f in column_order(selected) if f not in ALWAYS)))


def _purpose_reasons(spec: NewRequest, rule: BasisRule) -> list[str]:
    if not spec.purposes:
        return ["at least one purpose is required"]
    reasons: list[str] = []
    for purpose in spec.purposes:
        if purpose not in PURPOSES:
            reasons.append(
                Message(
                    N_("unknown purpose '{purpose}' (known: {PURPOSES})"), purpose=purpose, PURPOSES=", ".join(PURPOSES)
                )
            )
        elif purpose not in rule.purposes:
            reasons.append(
                Message(
                    N_("purpose {purpose} is not allowed under {basis} ({law})"),
                    purpose=purpose,
                    basis=spec.basis,
                    law=rule.law,
                )
            )
    return reasons


def _field_reasons(spec: NewRequest, rule: BasisRule) -> tuple[set[str], list[str]]:
    reasons: list[str] = []
    selected: set[str] = set()
    wanted = expand(spec.fields)
    if not wanted:
        reasons.append(Message(N_("no fields requested")))
    justified: set[str] = set()
    for purpose in spec.purposes:
        justified |= PURPOSES.get(purpose, ("", frozenset()))[1]
    for name in wanted:
        if name in NEVER_EXPORTED:
            reasons.append(Message(NEVER_EXPORTED[name]))
        elif name in ALWAYS:
            continue
        elif name not in FIELDS:
            reasons.append(
                Message(
                    N_("unknown field '{name}' (known: {f})"),
                    name=name,
                    f=", ".join(f for f in FIELDS if f not in ALWAYS),
                )
            )
        elif name not in rule.fields:
            reasons.append(
                Message(
                    N_("field {name} is not allowed under {basis} ({law})"), name=name, basis=spec.basis, law=rule.law
                )
            )
        elif name not in justified:
            reasons.append(
                Message(
                    N_("field {name} is not needed for the stated purposes ({purposes})"),
                    name=name,
                    purposes=", ".join(spec.purposes),
                )
            )
        else:
            selected.add(name)
    if "name" in selected:
        selected.add("name_fallback")  # 内閣府 データ項目の例示: a substitute form is allowed for 外字
    return selected, reasons


def excluded_row(*, shien_sochi: bool, yokushi: bool) -> bool:
    """Rows under 支援措置 (DV等) or 抑止 never leave, whatever the basis (only counted)."""
    return shien_sochi or yokushi
