"""A drill, failover or failback run as the commands share it: its context, the two-person
options, and how its result is shown and ends the command (exit 1 unless it passed)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.i18n import N_, _, shown
from bcpctl.options import F
from bcpctl.statuslabels import status_text
from bcpctl.tables import Table
from dc.errors import Message, ProblemFound, UsageError
from failover.checknames import check_detail, check_name

if TYPE_CHECKING:
    from failover.lifecycle import RunContext


def duration_text(seconds: float | None) -> str:
    from dc.duration import format_duration

    if seconds is None:
        return "—"
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


#: a run's verdict as its last line shows it; the English word stays first in every language (scripts grep it)
VERDICTS = {
    "passed": N_("PASSED"),
    "failed": N_("FAILED"),
    "aborted": N_("ABORTED"),
    "killed": N_("KILLED"),
    "running": N_("RUNNING"),
}


def render_run(console: Console, doc: dict[str, Any]) -> None:
    """The result of a drill, failover or failback as people read it."""
    table = Table(_("system"), _("tenant"), _("grp"), _("snapshot"), _("RPO / target"), _("RTO / target"), _("result"))
    for s in doc["systems"]:
        status = status_text(s["status"])
        if s["status"] != "passed":
            verdict = _(VERDICTS[s["status"]]) if s["status"] in VERDICTS else s["status"].upper()
            status = f"{verdict}: {s.get('error') or ''}"
        table.add_row(
            s["system"],
            s["tenant"],
            str(s["group"]),
            (s.get("snapshot_id") or "")[:8],
            f"{duration_text(s.get('rpo_seconds'))} / {duration_text(s.get('rpo_target'))}",
            f"{duration_text(s.get('rto_seconds'))} / {duration_text(s.get('rto_target'))}",
            status,
        )
    console.print(table)
    for check in doc.get("checks", []):
        if not check["ok"]:
            console.print(
                _("check failed: {name}: {detail}").format(
                    name=shown(check_name(check["name"])), detail=shown(check_detail(check["detail"]))
                )
            )
    cleanup = doc.get("cleanup")
    if cleanup is not None:
        console.print(
            _("cleanup: removed {removed}, left {left}").format(
                removed=len(cleanup["removed"]), left=len(cleanup["leftovers"])
            )
        )
        for left in cleanup["leftovers"]:
            console.print("  " + _("LEFT: {left}").format(left=shown(left)))
    for swept in doc.get("swept", []):
        console.print(
            _("swept run {run_id} ({was_status}): {removed}").format(
                run_id=swept["run_id"],
                was_status=status_text(swept["was_status"]),
                removed=", ".join(swept["cleanup"]["removed"]),
            )
        )
    if cp := doc.get("control_plane"):
        copy = cp.get("copy") or {}
        taken = (
            _("copy {snapshot} of {time}").format(
                snapshot=(copy.get("snapshot") or "")[:8], time=output.jst(copy.get("time"))
            )
            if copy
            else _("no copy")
        )
        console.print(
            _("control state at {site}: {source} ({taken}), control-plane RPO {rpo}; {lost}").format(
                site=cp["site"],
                source=cp["source"],
                taken=taken,
                rpo=duration_text(cp.get("rpo_seconds")),
                lost=cp.get("lost") or "",
            )
        )
    for warning in doc.get("warnings", []):
        console.print(_("warning: {warning}").format(warning=shown(warning)))
    if doc.get("reports"):
        console.print(_("reports: {path}").format(path=doc["reports"].get("html", "")))
    verdict = _(VERDICTS[doc["status"]]) if doc["status"] in VERDICTS else doc["status"].upper()
    console.print(
        f"{doc['kind']} {doc['mode']} {doc['id']}: {verdict}" + (f" ({doc['aborted']})" if doc.get("aborted") else "")
    )


def finish(doc: dict[str, Any]) -> None:
    """Render a run and exit 1 unless it passed."""
    output.current().result(doc, render_run)
    if doc["status"] != "passed":
        problem = (
            doc.get("error")
            or doc.get("aborted")
            or next(
                (
                    Message(N_("{name}: {reason}"), name=s["system"], reason=s["error"] or "")
                    for s in doc["systems"]
                    if s["status"] != "passed"
                ),
                None,
            )
        )
        if problem is None and doc.get("cleanup") and doc["cleanup"]["leftovers"]:
            problem = Message(N_("cleanup incomplete: {what}"), what=doc["cleanup"]["leftovers"][0])
        if problem is None:
            problem = next(
                (
                    Message(N_("{name}: {reason}"), name=check_name(c["name"]), reason=c["detail"])
                    for c in doc.get("checks", [])
                    if not c["ok"]
                ),
                Message(N_("see report")),
            )
        raise ProblemFound(
            N_("{doc} {doc2} {doc3}: {problem}"), doc=doc["kind"], doc2=doc["mode"], doc3=doc["status"], problem=problem
        )


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is JST, the municipalities' clock."""
    from dc.clock import JST

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(N_("invalid time '{text}': use ISO 8601, e.g. 2025-06-01T09:00+09:00"), text=text) from None
    return value if value.tzinfo else value.replace(tzinfo=JST)


def run_context(config_path: str | None, site: str | None = None) -> RunContext:
    """The run's context, read as at ``site`` when given (its own control database)."""
    from dc.config import load_config
    from failover.context import RunContext

    consortium, path = load_config(config_path)
    ctx = RunContext.create(consortium.at_site(site) if site else consortium, path)
    ctx.japanese = japanese
    return ctx


def japanese(line: str) -> str:
    """A line the core made, in Japanese: the reports show Japanese first whatever the operator's language."""
    return shown(check_detail(line), "ja")


def operator_options(fn: F) -> F:
    """The operator's own proof, which the two-person rule needs as much as the approver's (failover/approval.py)."""
    fn = click.option(
        "--operator-secret-file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Two-person rule: the operator's own secret (else $BCPCTL_OPERATOR_SECRET).",
    )(fn)
    return click.option(
        "--operator",
        default=None,
        help="Two-person rule: the operator's enrolled name (approvers:); default: the OS account.",
    )(fn)


def read_operator_secret(path: str | None) -> str | None:
    from dc.approvers import OPERATOR_SECRET_ENV, read_secret

    return read_secret(path, env=OPERATOR_SECRET_ENV, what="operator secret")
