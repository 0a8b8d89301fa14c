"""後乗り: a municipality joining the consortium after it started, as the 協定書 allows.

The joiner adopts the standard package the members already run (ノンカスタマイズ is what makes
joining late cheap), so its systems are a member's, renamed: same businesses, tiers, targets and
dependencies, its own sources. :func:`plan_join` is the what-if a 協議会 discusses before the
agreement — every member's bill before and after, the repository's and the drill calendar's
load, the recovery plan with the joiner in it — and changes nothing. :func:`join_text` writes
the configuration a reviewer signs off: the original file with the joiner's lines inserted,
comments kept, as a new text (the caller writes it to a new file, never over the old one).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from dc.config import Consortium, parse_config
from dc.cost import TenantUsage
from dc.errors import N_, ConfigError, UsageError
from dc.lgcodes import check_digit_problem, name_problem
from dc.proration import FiscalYearSplit, fiscal_year_of, prorate_fiscal_year
from failover.joincosts import contract_change
from failover.plan import build_plan


@dataclass(frozen=True)
class Joiner:
    id: str
    name: str
    lg_code: str
    population: int
    #: the member whose systems the joiner adopts (default: the first tenant)
    like: str | None = None
    #: businesses to adopt (default: all of the member's)
    businesses: tuple[str, ...] = ()
    #: the town's own domain for PFIF record ids (``tenants.<id>.pfif_domain``)
    pfif_domain: str | None = None
    #: its first day in the consortium (JST): it pays from that month (``tenants.<id>.joined``)
    start: date | None = None


@dataclass(frozen=True)
class JoinPlan:
    tenant: str
    name: str
    like: str
    systems: list[str]
    #: per member and the joiner: bill over the term and share of the contract, now and with the joiner
    bills: list[dict[str, Any]]
    #: the shared contract's total now (None without ``costs:``)
    total_yen: int | None
    repository: dict[str, Any]
    drills: dict[str, Any]
    #: the recovery plan with the joiner: per tier, all systems and the joiner's
    plan: list[dict[str, Any]] = field(default_factory=list)
    #: the contract's total with the joiner (None without ``costs:``)
    total_with_joiner_yen: int | None = None
    #: per category now and with the joiner, and the basis of the change (None without ``costs:``)
    contract: dict[str, Any] | None = None
    #: with a start date: the 年度 it joins in, every town's bill by its months in it
    fiscal_year: FiscalYearSplit | None = None


def _check(config: Consortium, joiner: Joiner) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", joiner.id):
        raise UsageError(N_("tenant id '{id}': lower-case letters, digits, - and _ only"), id=joiner.id)
    if joiner.id in config.tenants:
        raise UsageError(N_("'{id}' is already a member"), id=joiner.id)
    if problem := check_digit_problem(joiner.lg_code) or name_problem(joiner.name, joiner.lg_code):
        raise ConfigError(N_("--lg-code: {problem}"), problem=problem)
    for tid, tenant in config.tenants.items():
        if tenant.lg_code == joiner.lg_code:
            raise UsageError(
                N_("{lg_code} is already the code of member '{tid}' ({name})"),
                lg_code=joiner.lg_code,
                tid=tid,
                name=tenant.name,
            )
    if joiner.population <= 0:
        raise UsageError(N_("--population must be positive"))
    like = joiner.like or next(iter(config.tenants))
    if like not in config.tenants:
        raise UsageError(
            N_("unknown member '{like}' to adopt systems from (known: {tenants})"),
            like=like,
            tenants=", ".join(config.tenants),
        )
    return like


def _renamed(text: str, old: str, new: str) -> str:
    """A path, DSN or command of ``old``'s system, made ``new``'s (/srv/goka/ → /srv/sakai/, goka_juki → …)."""
    underscored = new.replace("-", "_")
    text = re.sub(rf"(?<![a-z0-9]){re.escape(old)}_", f"{underscored}_", text)
    return re.sub(rf"(?<![a-z0-9_]){re.escape(old)}(?![a-z0-9_])", new, text)


def joiner_sections(raw: Mapping[str, Any], joiner: Joiner, like: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The joiner's ``tenants:`` entry and ``systems:`` entries, adopted from member ``like``."""
    tenant: dict[str, Any] = {"name": joiner.name, "lg_code": joiner.lg_code, "population": joiner.population}
    if joiner.pfif_domain:
        tenant["pfif_domain"] = joiner.pfif_domain
    if joiner.start is not None:
        tenant["joined"] = joiner.start.isoformat()
    systems: dict[str, Any] = {}
    wanted = set(joiner.businesses)
    theirs = {sid: spec for sid, spec in raw["systems"].items() if spec.get("tenant") == like}
    known = {spec["business"] for spec in theirs.values()}
    if unknown := sorted(wanted - known):
        raise UsageError(N_("'{like}' runs no system for {unknown}"), like=like, unknown=", ".join(unknown))
    chosen = {sid for sid, spec in theirs.items() if not wanted or spec["business"] in wanted}
    stack = list(chosen)
    while stack:  # a chosen business brings what it depends on
        for dep in theirs[stack.pop()].get("depends_on") or ():
            if dep not in chosen:
                chosen.add(dep)
                stack.append(dep)
    for sid, spec in theirs.items():
        if sid not in chosen:
            continue
        new = copy.deepcopy(spec)
        new["tenant"] = joiner.id
        new.pop("smoke", None)  # a smoke query of the member's data would not hold for the joiner's
        new["source"] = {
            k: _renamed(v, like, joiner.id) if isinstance(v, str) else v for k, v in spec["source"].items()
        }
        for key in ("restore_dir", "restore_dsn"):
            if isinstance(spec.get(key), str):
                new[key] = _renamed(spec[key], like, joiner.id)
        if spec.get("depends_on"):
            new["depends_on"] = [_renamed(d, like, joiner.id) for d in spec["depends_on"]]
        systems[_renamed(sid, like, joiner.id)] = new
    return tenant, systems


def joined_raw(raw: Mapping[str, Any], joiner: Joiner, like: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(raw))
    tenant, systems = joiner_sections(raw, joiner, like)
    out["tenants"] = {**out["tenants"], joiner.id: tenant}
    out["systems"] = {**out.get("systems", {}), **systems}
    return out


def plan_join(
    raw: Mapping[str, Any], joiner: Joiner, usage: Mapping[str, TenantUsage], source: str = "<config>"
) -> JoinPlan:
    """The what-if of ``joiner`` joining: pure, over the configuration and the measured usage."""
    config = parse_config(copy.deepcopy(dict(raw)), source)
    like = _check(config, joiner)
    after = parse_config(joined_raw(raw, joiner, like), source)
    new_systems = [sid for sid, s in after.systems.items() if s.tenant == joiner.id]
    change = contract_change(config, after, joiner.population, usage, source)
    year = None
    if change is not None and joiner.start is not None:
        starts = {t: x.joined for t, x in after.tenants.items() if x.joined is not None}
        named = {t: (x.name, x.population) for t, x in after.tenants.items()}
        year = prorate_fiscal_year(change.joined, named, starts, fiscal_year_of(joiner.start), usage)
    return JoinPlan(
        tenant=joiner.id,
        name=joiner.name,
        like=like,
        systems=new_systems,
        bills=change.bills if change else [],
        total_yen=change.now_yen if change else None,
        total_with_joiner_yen=change.with_joiner_yen if change else None,
        contract={k: v for k, v in change.__dict__.items() if k not in ("bills", "joined")} if change else None,
        fiscal_year=year,
        repository=_repository(config, joiner, usage),
        drills=_drills(config, after, usage),
        plan=[
            {"tier": group[0].tier, "systems": len(group), "joiner": [s.system for s in group if s.tenant == joiner.id]}
            for group in build_plan(after).groups
        ],
    )


def _repository(config: Consortium, joiner: Joiner, usage: Mapping[str, TenantUsage]) -> dict[str, Any]:
    """Stored bytes now and the joiner's estimate: the members' bytes per resident, times its population."""
    measured = {t: u.repository_bytes for t, u in usage.items() if t in config.tenants and u.repository_bytes}
    stored = sum(measured.values())
    residents = sum(config.tenants[t].population for t in measured)
    estimate = stored * joiner.population // residents if residents else None
    return {
        "bytes_now": stored,
        "joiner_bytes_estimate": estimate,
        "bytes_with_joiner": stored + estimate if estimate is not None else None,
        "basis": "members' stored bytes per resident" if residents else "nothing measured yet",
    }


def _drills(before: Consortium, after: Consortium, usage: Mapping[str, TenantUsage]) -> dict[str, Any]:
    """Systems each drill cycle must cover, and the drill time that adds at the members' measured pace."""
    drilled = sum(u.drill_seconds for t, u in usage.items() if t in before.tenants)
    per_system = drilled / len(before.systems) if before.systems and drilled else None
    return {
        "systems_now": len(before.systems),
        "systems_with_joiner": len(after.systems),
        "drill_seconds_per_system": round(per_system, 3) if per_system is not None else None,
        "added_drill_seconds": round(per_system * (len(after.systems) - len(before.systems)), 3)
        if per_system is not None
        else None,
        "schedule": before.schedules.drill,
    }


def _flow(value: Any) -> str:
    """``value`` as a YAML flow node; every string double-quoted (JSON's quoting is YAML's), so a
    code like 085464 stays a string for any YAML reader."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_flow(v)}" for key, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def _mapping_at(node: yaml.Node, path: tuple[str, ...]) -> yaml.MappingNode | None:
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        found = next((value for k, value in node.value if k.value == key), None)
        if found is None:
            return None
        node = found
    return node if isinstance(node, yaml.MappingNode) else None


def join_text(
    text: str,
    raw: Mapping[str, Any],
    joiner: Joiner,
    like: str,
    extra: Mapping[tuple[str, ...], Mapping[str, Any]] | None = None,
) -> str:
    """``text`` (the configuration file) with the joiner's tenant and systems inserted, comments kept;
    ``extra`` adds entries to other block mappings that exist (e.g. ``("exports", "tenants")``)."""
    tenant, systems = joiner_sections(raw, joiner, like)
    root = yaml.compose(text)
    if root is None:
        raise UsageError(N_("the configuration file is empty"))
    lines = text.splitlines()
    inserts: list[tuple[int, list[str]]] = []
    extra = extra or {}
    wanted: dict[tuple[str, ...], Mapping[str, Any]] = {
        ("tenants",): {joiner.id: tenant},
        ("systems",): systems,
        **extra,
    }
    for path, entries in wanted.items():
        value, head = _mapping_at(root, path), []
        if value is None and path in extra and len(path) > 1 and _mapping_at(root, path[:-1]) is not None:
            value = _mapping_at(root, path[:-1])  # the section exists without this key: add the key too
            head = [path[-1]]
        if value is None or value.flow_style or not value.value:
            if path in extra:
                continue  # an optional section the file does not have
            raise UsageError(N_("cannot add to '{path}:': it is not a block mapping with entries"), path=".".join(path))
        indent = " " * value.value[0][0].start_mark.column
        last = value.value[-1][1].end_mark
        line = last.line + (1 if last.column else 0)
        while line > 0 and (not lines[line - 1].strip() or lines[line - 1].lstrip().startswith("#")):
            line -= 1  # a block value ends where the next key starts: after blank lines and its comments
        body = [f"{indent}{key}:" for key in head]
        indent += "  " * len(head)
        body += [f"{indent}# 後乗り: {joiner.name} ({joiner.lg_code}), adopted from {like}"]
        body += [f"{indent}{key}: {_flow(entry)}" for key, entry in entries.items()]
        inserts.append((line, body))
    for line, body in sorted(inserts, reverse=True):
        lines[line:line] = body
    return "\n".join(lines) + "\n"


def review_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_name, new_name))
