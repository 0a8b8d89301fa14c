"""What a run's checks and steps are called in a line for people.

A check's name is stored as the English the code gave it (run records, ``report.json``,
``--json``: scripts and old records read it as it is). Shown to people it goes through here: the
name is matched against the templates below and comes back as a :class:`~dc.errors.Message`
with the same English, which the CLI and the reports show in Japanese. A name no template
matches (a record of an older bcpctl) is shown as it is. tests/failover/test_checknames.py
fails when a check the code makes has no template here.
"""

from __future__ import annotations

import re
import string
from functools import cache

from dc.errors import N_, Message, Reason

#: every check name the drills, failovers and the export drill make (failover/, victim_support/)
CHECKS = (
    N_("steady state before the drill"),
    N_("steady state of production"),
    N_("drill server is not production"),
    N_("drill directory is not production"),
    N_("drill server reachable"),
    N_("drill directory writable"),
    N_("failover targets ready"),
    N_("failover targets in use by production"),
    N_("second copy of the active site"),
    N_("no sandboxes left by earlier drills"),
    N_("offsite repository opens"),
    N_("offsite repository verifies"),
    N_("tenant directory private"),
    N_("tenant reads own sandbox"),
    N_("smoke"),
    N_("probe login refused"),
    N_("tenant {tenant}'s login refused"),
    N_("failover to {site}"),
    N_("failback to {site}"),
    N_("no route from {netns} to {endpoint}"),
    N_("訓練 {step}"),
)

#: what a route check probes (failover.isolation's endpoints)
ENDPOINTS = (
    N_("drill server"),
    N_("host {host}"),
    N_("{system} source"),
    N_("{system} failover target"),
)

#: the steps a run times (a system's fetch/decrypt/restore/verify, the export drill's steps):
#: the English is the step's code, the Japanese the catalog's ``step:<code>``
STEPS: dict[str, Reason] = {
    "fetch": Reason("fetch", N_("step:fetch")),
    "decrypt": Reason("decrypt", N_("step:decrypt")),
    "restore": Reason("restore", N_("step:restore")),
    "verify": Reason("verify", N_("step:verify")),
    "request": Reason("request", N_("step:request")),
    "approvals": Reason("approvals", N_("step:approvals")),
    "build": Reason("build", N_("step:build")),
    "delivery": Reason("delivery", N_("step:delivery")),
    "open": Reason("open", N_("step:open")),
    "note": Reason("note", N_("step:note")),
    "deletion": Reason("deletion", N_("step:deletion")),
}


#: what the export drill's steps record as their check's detail (victim_support.exportdrill), read
#: back from a stored run as their English: matched here, so ``drill report`` shows them in Japanese
EXPORT_DETAILS = (
    N_("{request_id}: disaster of {date}, {basis}, {fields}"),
    N_("{count} of {required} by the rehearsal approval rule (throwaway credentials)"),
    N_("{rows} synthetic rows shaped like snapshot {snapshot}"),
    N_("opened with the partner's age identity"),
    N_("skipped: no --partner-identity"),
    N_("{note} about {person}, signed with {signer}"),
    N_("confirmed by {deleted_by}, signed with {signer}"),
)

#: who signed the partner's side of an export drill (a field of the details above)
SIGNERS = (N_("the partner's registered key"), N_("a key made for this run"))


def check_detail(detail: str) -> str:
    """A check's stored detail as a :class:`~dc.errors.Message` when it is one of the export
    drill's (itself otherwise, and a Message as it is)."""
    if isinstance(detail, Message) or not isinstance(detail, str):
        return detail
    return _match(detail, EXPORT_DETAILS) or detail


def check_name(name: str) -> str:
    """``name`` as a :class:`~dc.errors.Message` the catalog translates (itself when unknown)."""
    return _match(name, CHECKS) or name


def step_name(step: str) -> str:
    """A timed step's name for people (itself when unknown)."""
    return STEPS.get(step, step)


def _field(name: str, value: str) -> str:
    if name == "step":
        return step_name(value)
    if name == "endpoint":
        return _match(value, ENDPOINTS) or value
    if name == "signer":
        return _match(value, SIGNERS) or value
    return value


def _match(text: str, templates: tuple[str, ...]) -> Message | None:
    for template, pattern, fields in _patterns(templates):
        found = pattern.fullmatch(text)
        if found is not None:
            params = {f: _field(f, found.group(f)) for f in fields}
            return Message(template, **params)
    return None


@cache
def _patterns(templates: tuple[str, ...]) -> list[tuple[str, re.Pattern[str], list[str]]]:
    compiled = []
    for template in templates:
        parts, fields = [], []
        for literal, field, _spec, _conv in string.Formatter().parse(template):
            parts.append(re.escape(literal))
            if field:
                parts.append(f"(?P<{field}>.+?)")
                fields.append(field)
        compiled.append((template, re.compile("".join(parts)), fields))
    return compiled
