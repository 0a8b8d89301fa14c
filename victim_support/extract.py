"""Reading the rows a request may receive from a restored registry.

Only current residents (住民状態 = 住民) in the requested 町字 are considered. Rows under
支援措置 (DV等) or 抑止 are dropped and only counted — one combined count, so the partner
cannot tell which kind of protection applies in a small 町字. Identifiers are pseudonymised
per partner before anything leaves this module; 個人番号, 住民票コード, 本籍 and insurance or
pension columns are never even selected (``SOURCES`` is the complete list of what is read).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, String, and_, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError

from dc.errors import N_
from victim_support.charset import name_fallback
from victim_support.errors import RegistryError
from victim_support.policy import Scope, excluded_row
from victim_support.pseudonym import Pseudonymizer
from victim_support.schema import STATUS_RESIDENT, damage, registry_info, residents

_SPACE = "\u3000"  # 氏と名の間は全角空白 (住基の表記)
_DAMAGE = ("damage_status", "certificate_status", "aid_status")

#: Every registry expression an export can read, by the name the extract uses for it.
SOURCES: dict[str, ColumnElement[Any]] = {
    "atena_no": residents.c.atena_no,
    "setai_no": residents.c.setai_no,
    "shien_sochi": residents.c.shien_sochi,
    "yokushi": residents.c.yokushi,
    "yoshiensha": residents.c.yoshiensha,
    "name": (residents.c.family_name + _SPACE + residents.c.given_name).label("name"),
    "name_kana": (residents.c.family_name_kana + _SPACE + residents.c.given_name_kana).label("name_kana"),
    # Dates as text: ISO 8601 is what the files carry; parsing 100,000 dates only to print them is waste.
    "birth_date": type_coerce(residents.c.birth_date, String).label("birth_date"),
    "resident_since": type_coerce(residents.c.resident_since, String).label("resident_since"),
    **{
        name: residents.c[name]
        for name in (
            "sex",
            "relationship",
            "machiaza_id",
            "machiaza_name",
            "banchi",
            "katagaki",
            "postal_code",
            "phone",
            "support_reason_code",
        )
    },
    **{name: damage.c[name] for name in _DAMAGE},
}
_ALWAYS_READ = ("atena_no", "setai_no", "shien_sochi", "yokushi", "yoshiensha", "machiaza_id", "machiaza_name")
#: Output fields that are not a registry column of the same name.
_DERIVED = {"person_ref": ("atena_no",), "household_ref": ("setai_no",), "name_fallback": ("name", "name_kana")}


@dataclass
class Extract:
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    areas: list[tuple[str, str]]
    in_scope: int = 0
    excluded_protected: int = 0
    not_support_needed: int = 0
    pref: str = ""
    city: str = ""


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk row handling.

    ~50,000 rows become ~1,000,000 small objects that hold no reference cycles; the collector
    would only rescan them again and again (a third of the build time in measurements).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def needed_sources(columns: tuple[str, ...]) -> list[str]:
    needed = list(_ALWAYS_READ)
    for column in columns:
        for source in _DERIVED.get(column, (column,)):
            if source in SOURCES and source not in needed:
                needed.append(source)
    return needed


def column_values(name: str, kept: list[Any], ix: dict[str, int], pz: Pseudonymizer, info: dict[str, str]) -> list[str]:
    """One output column for all kept rows (column-wise: a build formats ~50,000 rows per column)."""
    if name == "person_ref":
        return [pz.person(r[0]) for r in kept]
    if name == "household_ref":
        return [pz.household(r[1]) for r in kept]
    if name == "name_fallback":
        n, k = ix["name"], ix["name_kana"]
        return [name_fallback(r[n], r[k]) for r in kept]
    if name in ("pref", "city"):
        return [info.get(name, "")] * len(kept)
    index = ix[name]
    values = [r[index] for r in kept]
    if set(map(type, values)) <= {str}:  # NOT NULL text columns: nothing to convert
        return values
    # NULL (no 台帳 entry) becomes empty; PostgreSQL hands dates as date objects, whose str() is ISO 8601.
    return ["" if v is None else str(v) for v in values]


def known_areas(engine: Engine) -> list[tuple[str, str]]:
    """Every ``(町字ID, 町字)`` pair with a current resident, in 町字ID order."""
    with engine.connect() as conn:
        known = conn.execute(
            select(residents.c.machiaza_id, residents.c.machiaza_name)
            .where(residents.c.status == STATUS_RESIDENT)
            .distinct()
            .order_by(residents.c.machiaza_id)
        ).all()
    return [(str(a), str(b)) for a, b in known]


def unknown_areas(pairs: list[tuple[str, str]], scope: Scope) -> list[str]:
    """The names or ids of ``scope`` that match no pair (empty for all areas)."""
    if scope.all_areas:
        return []
    by_key = {key for pair in pairs for key in pair}
    return [area for area in scope.areas if area not in by_key]


def resolve_areas(engine: Engine, scope: Scope) -> list[tuple[str, str]]:
    """The ``(町字ID, 町字)`` pairs a scope names; an unknown name or id is an error, never silently dropped."""
    pairs = known_areas(engine)
    if scope.all_areas:
        return pairs
    by_key = {key: pair for pair in pairs for key in pair}
    unknown = unknown_areas(pairs, scope)
    if unknown:
        raise RegistryError(
            N_("町字 not in the registry: {unknown} (use names or 7-digit 町字IDs)"), unknown=", ".join(unknown[:5])
        )
    chosen = {by_key[area] for area in scope.areas}
    return [pair for pair in pairs if pair in chosen]


def extract(
    engine: Engine, *, columns: tuple[str, ...], scope: Scope, disaster_id: str, pseudonymizer: Pseudonymizer
) -> Extract:
    """Rows for ``columns`` within ``scope``, protected rows counted and dropped."""
    needed = needed_sources(columns)
    ix = {name: i for i, name in enumerate(needed)}
    query = select(*(SOURCES[name] for name in needed)).where(residents.c.status == STATUS_RESIDENT)
    if any(c in _DAMAGE for c in needed):
        query = query.select_from(
            residents.outerjoin(
                damage, and_(damage.c.atena_no == residents.c.atena_no, damage.c.disaster_id == disaster_id)
            )
        )
    try:
        with engine.connect() as conn:
            info = dict(conn.execute(select(registry_info.c.key, registry_info.c.value)).all())
        areas = [] if scope.all_areas else resolve_areas(engine, scope)
        if not scope.all_areas:
            query = query.where(residents.c.machiaza_id.in_([a for a, _ in areas]))
        query = query.order_by(residents.c.machiaza_id, residents.c.setai_no, residents.c.atena_no)
        with collector_paused(), engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise RegistryError(N_("cannot read the restored registry: {exc}"), exc=str(exc).splitlines()[0]) from None
    result = Extract(columns, [], areas, pref=info.get("pref", ""), city=info.get("city", ""))
    with collector_paused():
        kept = []
        for row in rows:
            if excluded_row(shien_sochi=bool(row[2]), yokushi=bool(row[3])):
                result.excluded_protected += 1
            elif scope.support_only and not row[4]:
                result.not_support_needed += 1
            else:
                kept.append(row)
        result.in_scope = len(rows)
        if scope.all_areas:  # every 町字 with a current resident, protected ones included
            a, n = ix["machiaza_id"], ix["machiaza_name"]
            result.areas = sorted({(r[a], r[n]) for r in rows})
        data = [column_values(name, kept, ix, pseudonymizer, info) for name in columns]
        result.rows = list(zip(*data, strict=True)) if data else []
    return result
