"""What the partner portal's request form offers for a legal basis, and why it withholds the rest.

Pure functions over :mod:`victim_support.policy`'s tables: the form shows every field, with
the ones the basis does not allow disabled and the rule named, and lists the never-exported
items (個人番号, 住民票コード, …) with the law that forbids them, so an official in a shelter
sees at once what can be asked for and why not the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from victim_support.fields import ALWAYS, FIELDS, NEVER_EXPORTED
from victim_support.policy import BASES, PURPOSES, SUPPORT_NEEDED


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    allowed: bool
    #: why it is not allowed (empty when allowed)
    reason: str = ""
    #: purposes that justify the field (a field must be needed by a stated purpose)
    needed_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormOptions:
    basis: str
    law: str
    title: str
    support_only: bool
    fields: tuple[Option, ...]
    purposes: tuple[Option, ...]
    never: tuple[Option, ...]


def form_of_basis(basis: str) -> FormOptions:
    rule = BASES[basis]
    fields = []
    for key, label in FIELDS.items():
        if key in ALWAYS or key == "name_fallback":
            continue  # always present / added with the name (内閣府 データ項目の例示)
        needed = tuple(code for code, (_l, justified) in PURPOSES.items() if key in justified and code in rule.purposes)
        if key in rule.fields:
            fields.append(Option(key, label, True, "", needed))
        else:
            fields.append(Option(key, label, False, f"{basis} ({rule.law}) の提供項目ではありません / not allowed"))
    purposes = []
    for code, (label, _justified) in PURPOSES.items():
        if code in rule.purposes:
            purposes.append(Option(code, label, True))
        else:
            purposes.append(Option(code, label, False, f"{basis} の目的に含まれません / not a purpose under {basis}"))
    never = tuple(
        Option(key, key, False, reason)
        for key, reason in NEVER_EXPORTED.items()
        if key not in ("shien_sochi", "yokushi")  # row classes, shown as the exclusion notice instead
    )
    return FormOptions(
        basis,
        rule.law,
        rule.title,
        rule.row_classes == frozenset((SUPPORT_NEEDED,)),
        tuple(fields),
        tuple(purposes),
        never,
    )
