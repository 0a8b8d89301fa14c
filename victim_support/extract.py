"""Reading the rows a request may receive from a restored registry.

Only current residents (住民状態 = 住民) in the requested 町字 are considered. Rows under
支援措置 (DV等) or 抑止 are dropped and only counted — one combined count, so the partner
cannot tell which kind of protection applies in a small 町字. Identifiers are pseudonymised
per partner before anything leaves this module; 個人番号, 住民票コード, 本籍 and insurance or
pension columns are never even selected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, select
from sqlalchemy.exc import SQLAlchemyError

from victim_support.charset import name_fallback
from victim_support.errors import RegistryError
from victim_support.policy import Scope, excluded_row
from victim_support.pseudonym import Pseudonymizer
from victim_support.schema import STATUS_RESIDENT, damage, registry_info, residents

# The only registry columns an export reads; the forbidden ones are not in this list at all.
_COLUMNS = (
    "atena_no",
    "setai_no",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "relationship",
    "machiaza_id",
    "machiaza_name",
    "banchi",
    "katagaki",
    "postal_code",
    "resident_since",
    "phone",
    "support_reason_code",
    "shien_sochi",
    "yokushi",
    "yoshiensha",
)
_IX = {name: i for i, name in enumerate(_COLUMNS)}
_DAMAGE = ("damage_status", "certificate_status", "aid_status")


@dataclass
class Extract:
    columns: tuple[str, ...]
    rows: list[list[str]]
    areas: list[tuple[str, str]]
    in_scope: int = 0
    excluded_protected: int = 0
    not_support_needed: int = 0
    pref: str = ""
    city: str = ""
    counts: dict[str, int] = field(default_factory=dict)


def _name(row: Any) -> str:
    return f"{row[2]}\u3000{row[3]}"  # 氏と名の間は全角空白 (住基の表記)


def _kana(row: Any) -> str:
    return f"{row[4]}\u3000{row[5]}"


def _getters(pz: Pseudonymizer, pref: str, city: str) -> dict[str, Callable[[Any, tuple[str, ...]], str]]:
    def col(name: str) -> Callable[[Any, tuple[str, ...]], str]:
        index = _IX[name]
        return lambda row, _d: "" if row[index] is None else str(row[index])

    def iso(name: str) -> Callable[[Any, tuple[str, ...]], str]:
        index = _IX[name]
        return lambda row, _d: row[index].isoformat() if row[index] is not None else ""

    getters: dict[str, Callable[[Any, tuple[str, ...]], str]] = {
        "person_ref": lambda row, _d: pz.person(row[0]),
        "household_ref": lambda row, _d: pz.household(row[1]),
        "name": lambda row, _d: _name(row),
        "name_fallback": lambda row, _d: name_fallback(_name(row), _kana(row)),
        "name_kana": lambda row, _d: _kana(row),
        "birth_date": iso("birth_date"),
        "resident_since": iso("resident_since"),
        "pref": lambda _r, _d: pref,
        "city": lambda _r, _d: city,
    }
    for name in ("sex", "relationship", "machiaza_id", "machiaza_name", "banchi", "katagaki", "postal_code"):
        getters[name] = col(name)
    getters["phone"] = col("phone")
    getters["support_reason_code"] = col("support_reason_code")
    for i, name in enumerate(_DAMAGE):
        getters[name] = lambda _r, d, i=i: d[i] if d else ""
    return getters


def resolve_areas(engine: Engine, scope: Scope) -> list[tuple[str, str]]:
    """The ``(町字ID, 町字)`` pairs a scope names; an unknown name or id is an error, never silently dropped."""
    with engine.connect() as conn:
        known = conn.execute(
            select(residents.c.machiaza_id, residents.c.machiaza_name)
            .where(residents.c.status == STATUS_RESIDENT)
            .distinct()
            .order_by(residents.c.machiaza_id)
        ).all()
    pairs = [(str(a), str(b)) for a, b in known]
    if scope.all_areas:
        return pairs
    by_key = {key: pair for pair in pairs for key in pair}
    unknown = [area for area in scope.areas if area not in by_key]
    if unknown:
        raise RegistryError(f"町字 not in the registry: {', '.join(unknown[:5])} (use names or 7-digit 町字IDs)")
    chosen = {by_key[area] for area in scope.areas}
    return [pair for pair in pairs if pair in chosen]


def extract(
    engine: Engine, *, columns: tuple[str, ...], scope: Scope, disaster_id: str, pseudonymizer: Pseudonymizer
) -> Extract:
    """Rows for ``columns`` within ``scope``, protected rows counted and dropped."""
    try:
        with engine.connect() as conn:
            info = dict(conn.execute(select(registry_info.c.key, registry_info.c.value)).all())
        areas = resolve_areas(engine, scope)
        result = Extract(columns, [], areas, pref=info.get("pref", ""), city=info.get("city", ""))
        getters = _getters(pseudonymizer, result.pref, result.city)
        row_fns = [getters[c] for c in columns]
        wants_damage = any(c in _DAMAGE for c in columns)
        query = select(*(residents.c[c] for c in _COLUMNS)).where(residents.c.status == STATUS_RESIDENT)
        if not scope.all_areas:
            query = query.where(residents.c.machiaza_id.in_([a for a, _ in areas]))
        if wants_damage:
            query = query.add_columns(*(damage.c[c] for c in _DAMAGE)).outerjoin(
                damage, and_(damage.c.atena_no == residents.c.atena_no, damage.c.disaster_id == disaster_id)
            )
        query = query.order_by(residents.c.machiaza_id, residents.c.setai_no, residents.c.atena_no)
        with engine.connect() as conn:
            for row in conn.execute(query):
                result.in_scope += 1
                if excluded_row(shien_sochi=bool(row[17]), yokushi=bool(row[18])):
                    result.excluded_protected += 1
                    continue
                if scope.support_only and not row[19]:
                    result.not_support_needed += 1
                    continue
                extra = tuple("" if v is None else str(v) for v in row[len(_COLUMNS) :]) if wants_damage else ()
                result.rows.append([fn(row, extra) for fn in row_fns])
    except SQLAlchemyError as exc:
        raise RegistryError(f"cannot read the restored registry: {str(exc).splitlines()[0]}") from None
    return result
