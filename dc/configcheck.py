"""Every problem of a configuration file at once, each with its line and field path.

A command stops at the file's first problem (:func:`dc.config.load_config`): it cannot run on a
broken file anyway. Someone fixing the file wants the whole list in one pass, with lines
(``bcpctl config check``). Pydantic collects the field errors of a model; dangling references
are computed from the raw file too, so they show beside field errors. The free-form sections
(drills, exports, web, costs, schedules) belong to packages above dc, so the caller passes
their checks in as :class:`Section`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from dc.config import Consortium, Loc, config_errors, field_error, read_config, yaml_problem
from dc.errors import N_, Message, UsageError
from dc.yamllines import load_located

#: a dotted field path at the start of a message ("exports.tenants.goka: unknown tenant")
_FIELD = re.compile(r"[\w-]+(?:\.[\w-]+)*")


@dataclass(frozen=True)
class Problem:
    #: 1-based line in the file (``None``: the position is unknown)
    line: int | None
    #: dotted field path ("" for the file as a whole)
    field: str
    message: str


@dataclass(frozen=True)
class Section:
    """A section of the file validated by the package that reads it.

    ``model`` reports every field error of the section at once, when the file has the section;
    ``check`` runs once the whole file validates and raises a :class:`~dc.errors.UsageError`
    for the first problem across sections it finds (an unknown system, a bad schedule).
    """

    name: str
    model: type[BaseModel] | None
    check: Callable[[Consortium, str], object]


@dataclass(frozen=True)
class ConfigReport:
    config: Path
    problems: list[Problem]
    #: what a valid file declares: number of sites, tenants, systems, hosts, partners
    counts: dict[str, int] = field(default_factory=dict)
    #: what a valid file allows but should not (each one line), from the callers' ``advice``
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_config(
    path: str | os.PathLike[str] | None,
    sections: Sequence[Section] = (),
    advice: Sequence[Callable[[Consortium], list[str]]] = (),
) -> ConfigReport:
    """Validate the file like every command does, and collect every problem instead of the first;
    a valid file also gets the warnings of ``advice`` (packages above dc judge their own settings)."""
    resolved, text = read_config(path)
    try:
        document = load_located(text)
    except yaml.YAMLError as exc:
        line, message = yaml_problem(exc)
        return ConfigReport(resolved, [Problem(line, "", message)])
    raw = document.data
    if not isinstance(raw, dict):
        return ConfigReport(
            resolved, [Problem(document.line(()), "", Message(N_("expected a mapping at the top level")))]
        )
    found: list[tuple[Loc, str]] = []
    consortium: Consortium | None = None
    try:
        consortium = Consortium.model_validate(raw)
    except ValidationError as exc:
        found += config_errors(exc, raw)
    for section in sections:
        body = raw.get(section.name)
        if section.model is not None and isinstance(body, Mapping):
            try:
                section.model.model_validate(body)
            except ValidationError as exc:
                found += [field_error(e, (section.name,)) for e in exc.errors()]
                continue
        if consortium is not None:
            try:
                section.check(consortium, str(resolved))
            except UsageError as exc:
                found.append(_message_error(exc.message, str(resolved), section.name))
    problems = sorted(
        (Problem(document.line(loc), ".".join(map(str, loc)), message) for loc, message in found),
        key=lambda p: (p.line or 0, p.field),
    )
    if problems or consortium is None:
        return ConfigReport(resolved, problems)
    counts = {name: len(getattr(consortium, name)) for name in ("sites", "tenants", "systems", "hosts", "partners")}
    return ConfigReport(resolved, [], counts, [line for judge in advice for line in judge(consortium)])


def _message_error(message: str, source: str, section: str) -> tuple[Loc, str]:
    """A section check's one-line error ("FILE: field.path: what") as a field path and a message."""
    text = message.removeprefix(f"{source}: ")
    path, sep, rest = text.partition(": ")
    if sep and _FIELD.fullmatch(path):
        return tuple(path.split(".")), rest
    return (section,), text
