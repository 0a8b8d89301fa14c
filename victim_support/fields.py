"""The vocabulary of export fields, and what never leaves whatever is asked.

Field keys follow the research recommendation (§7.1): pseudonymous ``person_ref`` and
``household_ref`` instead of 宛名番号 / 世帯番号, the name with a CP932-safe ``name_fallback``,
ISO 8601 dates, and the address split into 町字ID + 町字 + 番地 + 方書 so that "2丁目3番" and
"2の3" cannot be confused by the receiving system.
"""

from __future__ import annotations

from dc.errors import N_

#: Every field an export file can carry, in file column order, with its Japanese label.
FIELDS: dict[str, str] = {
    "person_ref": "個人参照 (提供先ごとの仮名ID)",
    "household_ref": "世帯参照 (提供先ごとの仮名ID)",
    "name": "氏名",
    "name_fallback": "氏名 (縮退表記)",
    "name_kana": "氏名フリガナ",
    "birth_date": "生年月日",
    "sex": "性別",
    "relationship": "続柄",
    "pref": "都道府県",
    "city": "市区町村",
    "machiaza_id": "町字ID",
    "machiaza_name": "町字",
    "banchi": "番地",
    "katagaki": "方書",
    "postal_code": "郵便番号",
    "resident_since": "住民となった年月日",
    "phone": "連絡先",
    "support_reason_code": "避難支援等を必要とする事由 (コード)",
    "damage_status": "住家の被害の状況",
    "certificate_status": "罹災証明書の交付状況",
    "aid_status": "援護の実施の状況",
}

#: Always present: the stable pseudonymous references the partner reports back with.
ALWAYS = ("person_ref", "household_ref")

#: Shorthands a request may use.
GROUPS: dict[str, tuple[str, ...]] = {
    "address": ("pref", "city", "machiaza_id", "machiaza_name", "banchi", "katagaki", "postal_code"),
    "damage": ("damage_status", "certificate_status", "aid_status"),
}

#: Never exported whatever the basis, purpose or approval — with the rule that says so.
NEVER_EXPORTED: dict[str, str] = {
    "kojin_bango": N_("個人番号 is never exported (番号法19条 is a closed list; consent does not widen it)"),
    "juminhyo_code": N_("住民票コード is never exported (住基法30条の36/37)"),
    "honseki": N_("本籍 is never exported (not needed for any disaster purpose)"),
    "kokuho_no": N_("insurance data (国民健康保険) is never exported"),
    "kiso_nenkin_no": N_("pension data (基礎年金番号) is never exported"),
    "atena_no": N_("宛名番号 is never exported; the partner receives person_ref instead"),
    "setai_no": N_("世帯番号 is never exported; the partner receives household_ref instead"),
    "shien_sochi": N_("支援措置 rows are never exported; they are only counted"),
    "yokushi": N_("抑止 rows are never exported; they are only counted"),
}

#: Names people type for forbidden data, so the rejection names the rule instead of "unknown field".
ALIASES: dict[str, str] = {
    "個人番号": "kojin_bango",
    "マイナンバー": "kojin_bango",
    "my_number": "kojin_bango",
    "mynumber": "kojin_bango",
    "住民票コード": "juminhyo_code",
    "本籍": "honseki",
    "宛名番号": "atena_no",
    "世帯番号": "setai_no",
    "支援措置": "shien_sochi",
    "抑止": "yokushi",
    "insurance": "kokuho_no",
    "pension": "kiso_nenkin_no",
}

#: Registry columns that must never appear in an output file under any name.
FORBIDDEN_COLUMNS = frozenset(NEVER_EXPORTED)


def canonical_field(name: str) -> str:
    """The field key for what a request typed (aliases and case folded)."""
    cleaned = name.strip()
    return ALIASES.get(cleaned, ALIASES.get(cleaned.lower(), cleaned.lower()))


def expand(requested: list[str] | tuple[str, ...]) -> list[str]:
    """Requested names with groups expanded and aliases resolved, first occurrence kept."""
    out: list[str] = []
    for name in requested:
        key = canonical_field(name)
        for item in GROUPS.get(key, (key,)):
            if item not in out:
                out.append(item)
    return out


def column_order(selected: set[str]) -> tuple[str, ...]:
    """File column order for a set of fields (``FIELDS`` order)."""
    return tuple(key for key in FIELDS if key in selected)
