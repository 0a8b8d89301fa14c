"""``tenant plan-join|join``: a municipality joining the consortium late (後乗り)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.fiscalyear import render_fiscal_year
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.params import Checked
from bcpctl.statuslabels import status_text
from bcpctl.tables import Table
from dc.errors import N_


@click.group()
def tenant() -> None:
    """Members of the consortium: a town joining late (後乗り)."""


def _joiner_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--name", required=True, help="The municipality's name, e.g. 境町."),
            click.option("--lg-code", "lg_code", required=True, help="Its 6-digit 地方公共団体コード."),
            click.option("--population", required=True, type=click.IntRange(1, 10**8), help="Its population."),
            click.option("--id", "tenant_id", default=None, help="Tenant id in the configuration (default: lg<code>)."),
            click.option("--like", default=None, help="The member whose systems it adopts (default: the first)."),
            click.option(
                "--systems", "businesses", multiple=True, help="A business to adopt (repeatable; default: all)."
            ),
            click.option("--pfif-domain", default=None, help="Its own domain for PFIF record ids (town.x.lg.jp)."),
            click.option(
                "--from",
                "start",
                default=None,
                type=Checked("date", "dc.proration:parse_start"),
                metavar="YYYY-MM-DD",
                help="Its first day (JST): it pays from that month, the members' shares change then; "
                "shows that fiscal year's bills (April-March).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def _joiner(
    name: str,
    lg_code: str,
    population: int,
    tenant_id: str | None,
    like: str | None,
    businesses: tuple[str, ...],
    pfif_domain: str | None,
    start: str | None,
) -> Any:
    from dc.proration import parse_start
    from failover.joining import Joiner

    return Joiner(
        tenant_id or f"lg{lg_code}",
        name,
        lg_code,
        population,
        like,
        businesses,
        pfif_domain,
        parse_start(start) if start else None,
    )


def _share(share: float | None) -> str:
    return f"{share:.2%}" if share is not None else "-"


def _contract(
    console: Console, now: int | None, after: int | None, contract: dict[str, Any] | None, bills: list[dict[str, Any]]
) -> None:
    """The shared contract's total and every member's bill and share, now and with the joiner."""
    if contract is None or now is None or after is None:
        console.print(_("no costs: section: the contract and the bills are not computed"))
        return
    console.print(
        _("shared contract: {now} yen → {after} yen ({added:+,} yen)").format(
            now=f"{now:,}", after=f"{after:,}", added=after - now
        )
    )
    if not contract["priced"]:
        console.print(_("the contract prices no joining (per_member_yen / per_resident_yen): total unchanged"))
    table = Table(
        _("tenant"), _("name"), _("now"), _("share now"), _("with joiner"), _("share with joiner"), _("change")
    )
    for b in bills:
        table.add_row(
            b["tenant"],
            b["name"],
            f"{b['now_yen']:,}" if b["now_yen"] is not None else "-",
            _share(b["share_now"]),
            f"{b['with_joiner_yen']:,}",
            _share(b["share_with_joiner"]),
            f"{b['change_yen']:+,}" if b["change_yen"] is not None else _("new"),
        )
    console.print(table)


def _raw(config_path: str) -> tuple[Path, str, dict[str, Any]]:
    import yaml

    from dc.config import load_config, read_config

    load_config(config_path)  # the file as it stands must be valid first (exit 2 naming the field)
    resolved, text = read_config(config_path)
    return resolved, text, yaml.safe_load(text)


def _usage(config_path: str) -> Any:
    from dc.config import load_config
    from dc.state import open_state
    from dc.usage import measure_usage

    return measure_usage(open_state(load_config(config_path)[0].control_db))


@tenant.command("plan-join")
@config_option()
@_joiner_options
@common_options
def tenant_plan_join(config_path: str, **given: Any) -> None:
    """What joining would mean, before the agreement: every member's bill now and with the joiner
    (with --from, in the fiscal year it joins, by months), the repository's and the drill calendar's
    load, the recovery plan with it. Changes nothing."""
    from failover.joining import plan_join

    resolved, _text, raw = _raw(config_path)
    plan = plan_join(raw, _joiner(**given), _usage(config_path), str(resolved))

    def render(console: Console, d: dict[str, Any]) -> None:
        _contract(console, d["total_yen"], d["total_with_joiner_yen"], d["contract"], d["bills"])
        if d["fiscal_year"]:
            render_fiscal_year(console, d["fiscal_year"])
        r, dr = d["repository"], d["drills"]
        console.print(_("systems adopted from {like}: {n}").format(like=d["like"], n=len(d["systems"])))
        console.print(
            _("repository: {now} bytes now, joiner ~{joiner} ({basis})").format(
                now=f"{r['bytes_now']:,}", joiner=f"{r['joiner_bytes_estimate'] or 0:,}", basis=r["basis"]
            )
        )
        console.print(
            _("drills: {now} → {after} systems per cycle").format(
                now=dr["systems_now"], after=dr["systems_with_joiner"]
            )
        )
        for g in d["plan"]:
            console.print(
                _("tier {tier}: {n} systems, {mine} of the joiner").format(
                    tier=g["tier"], n=g["systems"], mine=len(g["joiner"])
                )
            )

    output.current().result(plan, render)


@tenant.command("join")
@config_option()
@_joiner_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The new configuration file.")
@click.option(
    "--keys-dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Where the town's export signing key and pseudonym secret are created (0600).",
)
@click.option("--first-run", is_flag=True, help="Then back up the new systems once and run a readiness drill.")
@click.option(
    "--approver",
    "approvers",
    multiple=True,
    help="The town's export approver (repeatable; default: <id>-approver-1 … as many as the two-person rule needs).",
)
@common_options
def tenant_join(
    config_path: str, out_path: str, keys_dir: str, first_run: bool, approvers: tuple[str, ...], **given: Any
) -> None:
    """Add the town: a new configuration file beside a reviewable diff (the old file is never edited),
    its keys, and the backup jobs the scheduler will run for it."""
    from monitoring.joinrun import join_tenant

    resolved, text, raw = _raw(config_path)
    result = join_tenant(
        resolved, text, raw, _joiner(**given), Path(out_path), Path(keys_dir), first_run=first_run, approvers=approvers
    )

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(_("new configuration: {config} (review: {diff})").format(config=d["config"], diff=d["diff"]))
        console.print(_("keys: {keys}").format(keys=", ".join(d["keys"])))
        console.print(_("export signing key fingerprint (for partners): {fp}").format(fp=d["signing_key_fingerprint"]))
        if d["contract"]:
            c = d["contract"]
            _contract(console, c["now_yen"], c["with_joiner_yen"], c, c["bills"])
        if d["fiscal_year"]:
            render_fiscal_year(console, d["fiscal_year"])
        if d["approver_steps"]:
            console.print(_("no export of this town can be approved until each approver below is enrolled:"))
        for step in d["approver_steps"] or []:
            console.print(f"  {step['approver']}: {step['command']}", highlight=False, soft_wrap=True)
            console.print(f"    {step['confirm']}", highlight=False)
        table = Table(_("system"), _("backup every (s)"), _("site"))
        for job in d["schedule"]:
            table.add_row(job["system"], str(job["interval"]), job["site"])
        console.print(table)
        for b in d["first_backup"] or []:
            console.print(
                _("first backup {system}: {result}").format(
                    system=b["system"], result=_("ok") if b["ok"] else _("FAILED ") + (b["error"] or "")
                )
            )
        if d["readiness"]:
            r = d["readiness"]
            console.print(
                _("readiness drill {run}: {status} {why}").format(
                    run=r["run"], status=status_text(r["status"]), why=r["why"] or ""
                )
            )

    output.current().result(result, render)
    failed = [b["system"] for b in result.first_backup or [] if not b["ok"]]
    if failed or (result.readiness and result.readiness["status"] != "passed"):
        from dc.errors import ProblemFound

        raise ProblemFound(
            N_("the joiner's first run is not clean: {failed}"), failed=", ".join(failed) or result.readiness
        )


COMMANDS = [tenant]
