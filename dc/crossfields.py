"""Configuration problems no single field shows: dangling references, one credential under two
approvers, a municipality code that belongs to another municipality.

Its own module because the configuration model raises them when it validates, and
``bcpctl config check`` lists them from the raw mapping beside field errors (pydantic runs
the model validator only once every field is valid), so every check here reads either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from dc.lgcodes import check_digit_problem, name_problem


def _field(entry: Any, name: str) -> Any:
    """A field of a validated model, or of the raw mapping it is read from."""
    if isinstance(entry, Mapping):
        return entry.get(name)
    return getattr(entry, name, None) if isinstance(entry, BaseModel) else None


def _names(value: Any) -> set[str] | None:
    """The names a section declares, or ``None`` when it is no mapping (pydantic reports that)."""
    return {str(name) for name in value} if isinstance(value, Mapping) else None


def _listed(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def cross_field_problems(config: BaseModel | Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Problems no single field shows: dangling references, one credential under two approvers.

    Takes the raw mapping as well, so ``bcpctl config check`` lists these beside field errors
    (pydantic runs the model validator only once every field is valid).
    """
    return [*dangling_references(config), *shared_credentials(config), *wrong_lg_codes(config)]


def wrong_lg_codes(config: BaseModel | Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Tenants and partners whose well-formed ``lg_code`` belongs to another municipality than
    their ``name`` (境町's 085421 under 五霞町 passes the check digit, never this)."""
    found: list[tuple[tuple[str, ...], str]] = []
    for section in ("tenants", "partners"):
        entries = _field(config, section)
        for key, entry in entries.items() if isinstance(entries, Mapping) else ():
            name, code = _field(entry, "name"), _field(entry, "lg_code")
            if not isinstance(name, str) or not isinstance(code, str) or check_digit_problem(code):
                continue  # a malformed code is the field's own error
            if problem := name_problem(name, code):
                found.append(((section, str(key), "lg_code"), problem))
    return found


def shared_credentials(config: BaseModel | Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Approvers enrolled with the same credential (its public key, after the last ``$``): two
    names on one secret would let one person satisfy the two-person rule."""
    approvers = _field(config, "approvers")
    seen: dict[str, str] = {}
    found: list[tuple[tuple[str, ...], str]] = []
    for name, text in approvers.items() if isinstance(approvers, Mapping) else ():
        if isinstance(text, str) and (other := seen.setdefault(text.rsplit("$", 1)[-1], name)) != name:
            found.append((("approvers", name), f"the same credential as '{other}': each approver enrolls their own"))
    return found


def dangling_references(config: BaseModel | Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Every name that points at nothing: a system's tenant or dependency, a host's site or tenants.

    Takes the raw mapping as well, so ``bcpctl config check`` lists these beside field errors
    (pydantic runs the model validator only once every field is valid).
    """
    tenants, sites = _names(_field(config, "tenants")), _names(_field(config, "sites"))
    systems = _field(config, "systems")
    found: list[tuple[tuple[str, ...], str]] = []
    for name, system in systems.items() if isinstance(systems, Mapping) else ():
        tenant = _field(system, "tenant")
        if tenants is not None and isinstance(tenant, str) and tenant not in tenants:
            found.append((("systems", name, "tenant"), f"unknown tenant '{tenant}'"))
        for dep in _listed(_field(system, "depends_on")):
            if dep not in systems:
                found.append((("systems", name, "depends_on"), f"unknown system '{dep}'"))
        run_on, hosts = _field(system, "run_on"), _names(_field(config, "hosts"))
        if isinstance(run_on, str) and run_on not in (hosts or ()):
            found.append((("systems", name, "run_on"), f"unknown host '{run_on}'"))
    hosts = _field(config, "hosts")
    for name, host in hosts.items() if isinstance(hosts, Mapping) else ():
        site = _field(host, "site")
        if sites is not None and isinstance(site, str) and site not in sites:
            found.append((("hosts", name, "site"), f"unknown site '{site}'"))
        for tenant in _listed(_field(host, "tenants")):
            if tenants is not None and tenant not in tenants:
                found.append((("hosts", name, "tenants"), f"unknown tenant '{tenant}'"))
    return found


class FieldProblem(ValueError):
    """A problem found across fields (a dangling reference, a shared credential), raised with
    the exact field path it concerns."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
