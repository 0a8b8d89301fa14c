"""``dc inventory|run|exec|facts|maintenance|cost-split``: operating the shared hardware."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output, session
from bcpctl.commands.repo import human_bytes
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option, key_value_pairs
from bcpctl.params import Checked, FiniteFloat, Pattern
from bcpctl.statuslabels import status_text
from bcpctl.tables import Table, styled
from dc.errors import N_, AuthError, Message, ProblemFound, UsageError

_STATUS_STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "unreachable": "bold red", "skipped": "dim"}


@click.group("dc")
def dc() -> None:
    """Operate the data center's hosts: Ansible playbooks, SSH, maintenance, cost split."""


@dc.command("inventory")
@config_option()
@common_options
def dc_inventory(config_path: str) -> None:
    """Show the configuration's hosts as an Ansible inventory (groups per site, role, rack, tenant)."""
    from dc.inventory import build_inventory

    consortium, config_dir = session.config(config_path)
    inventory = build_inventory(consortium, config_dir)

    def render(console: Console, data: dict[str, Any]) -> None:
        groups: dict[str, list[str]] = {}
        for group, members in data["all"]["children"].items():
            for host in members["hosts"]:
                groups.setdefault(host, []).append(group)
        table = Table(_("host"), _("address"), _("user"), _("key file"), _("groups"))
        for host, hv in data["all"]["hosts"].items():
            table.add_row(
                host,
                f"{hv['ansible_host']}:{hv['ansible_port']}",
                hv["ansible_user"],
                hv.get("ansible_ssh_private_key_file") or _("(agent)"),
                " ".join(groups.get(host, [])),
            )
        console.print(table)

    output.current().result(inventory, render)


class _LiveHosts:
    """The live per-host view during a run: each host's counts and its current task."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.rows: dict[str, dict[str, Any]] = {}
        self.live = Live(self._table(), console=console, transient=True, refresh_per_second=4)

    def _table(self) -> Table:
        table = Table(_("host"), _("ok"), _("changed"), _("failed"), _("unreachable"), _("last task"))
        for host, row in sorted(self.rows.items()):
            table.add_row(
                host, str(row["ok"]), str(row["changed"]), str(row["failed"]), str(row["unreachable"]), row["task"]
            )
        return table

    def __call__(self, event: Any) -> None:
        row = self.rows.setdefault(event.host, {"ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "task": ""})
        # Ansible's convention: a changed task is also counted as ok
        for key in {"ok": ["ok"], "changed": ["ok", "changed"]}.get(event.status, [event.status]):
            if key in row:
                row[key] += 1
        row["task"] = f"{event.task} ({event.status})"
        self.live.update(self._table())


def _render_run(console: Console, data: dict[str, Any]) -> None:
    title = f"{data['playbook']}{' ' + _('(check mode: nothing changed)') if data['check'] else ''}"
    table = Table(
        _("host"),
        _("status"),
        _("ok"),
        _("changed"),
        _("failed"),
        _("unreachable"),
        _("skipped"),
        _("message"),
        title=title,
    )
    for h in data["hosts"]:
        style = _STATUS_STYLE.get(h["status"], "")
        table.add_row(
            h["host"],
            styled(status_text(h["status"]), style=style) if style else status_text(h["status"]),
            str(h["ok"]),
            str(h["changed"]),
            str(h["failed"]),
            str(h["unreachable"]),
            str(h["skipped"]),
            h["message"] or "",
        )
    console.print(table)
    console.print(
        _("run {run_id}: {status} in {seconds} s").format(
            run_id=data["run_id"], status=status_text(data["status"]), seconds=f"{data['seconds']:.1f}"
        )
    )


@dc.command("run")
@click.argument("playbook")
@config_option()
@click.option(
    "--limit", default=None, type=Pattern(), metavar="PATTERN", help="Only hosts matching this Ansible pattern."
)
@click.option("--check", is_flag=True, help="Show what would change; change nothing.")
@click.option(
    "-e",
    "--extra-var",
    "extra_vars",
    multiple=True,
    metavar="K=V",
    callback=key_value_pairs,
    help="Extra variable (repeatable).",
)
@click.option("--skip-maintenance", is_flag=True, help="Leave hosts in maintenance out of the inventory.")
@common_options
def dc_run(
    playbook: str,
    config_path: str,
    limit: str | None,
    check: bool,
    extra_vars: dict[str, str],
    skip_maintenance: bool,
) -> None:
    """Run a playbook from playbooks/ on the configured hosts and show per-host results."""
    from dc.ansible import host_key_refused, run_playbook
    from dc.inventory import build_inventory
    from dc.maintenance import load_maintenance
    from dc.state import open_state

    consortium, config_dir = session.config(config_path)
    state = open_state(consortium.control_db)
    exclude = list(load_maintenance(state)) if skip_maintenance else []
    inventory = build_inventory(consortium, config_dir, exclude=exclude)
    out = output.current()
    live = _LiveHosts(out.err) if out.interactive else None
    if live is not None:
        live.live.start()
    try:
        result = run_playbook(
            playbook,
            inventory=inventory,
            limit=limit,
            check=check,
            extravars=extra_vars,
            state=state,
            on_event=live,
        )
    finally:
        if live is not None:
            live.live.stop()
    data = output.to_jsonable(result)
    data["ok"] = result.ok
    out.result(data, _render_run)
    if refused := host_key_refused(result):
        raise AuthError(N_("host key refused for {refused}: check the site's known_hosts"), refused=", ".join(refused))
    if not result.ok:
        bad = [f"{h.host} {h.status}" for h in result.hosts if h.status in ("failed", "unreachable")]
        raise ProblemFound(
            N_("playbook {playbook}: {bad}"),
            playbook=result.playbook,
            bad=", ".join(bad) or result.error or result.status,
        )


@dc.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@config_option()
@click.option(
    "--timeout",
    type=FiniteFloat(0, 86400, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Give up after this long.",
)
@common_options
def dc_exec(host: str, command: tuple[str, ...], config_path: str, timeout: float | None) -> None:
    """Run a command on HOST over SSH (strict host keys): bcpctl dc exec HOST -- CMD ..."""
    from dc.inventory import managed_host
    from dc.ssh import exec_command

    consortium, config_dir = session.config(config_path)
    target = managed_host(consortium, host, config_dir)
    text = command[0] if len(command) == 1 else shlex.join(command)
    out = output.current()

    def stream(name: str, data: bytes) -> None:
        sink = sys.stdout.buffer if name == "stdout" else sys.stderr.buffer
        sink.write(data)
        sink.flush()

    result = exec_command(target, text, on_output=None if out.json_mode else stream, timeout=timeout)
    if out.json_mode:
        out.result(result)
    if result.exit_status != 0:
        raise ProblemFound(
            N_("{host}: command exited with status {exit_status}"), host=host, exit_status=result.exit_status
        )


@dc.command("facts")
@click.argument("host", required=False)
@config_option()
@common_options
def dc_facts(host: str | None, config_path: str) -> None:
    """Quick facts (OS, load, memory, disk) of HOST, or of every configured host, over SSH."""
    from dc.facts import gather_many
    from dc.inventory import managed_host, managed_hosts

    consortium, config_dir = session.config(config_path)
    hosts = (
        [managed_host(consortium, host, config_dir)] if host else list(managed_hosts(consortium, config_dir).values())
    )
    outcomes = gather_many(hosts)

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        table = Table(
            _("host"), _("hostname"), _("os"), _("cpus"), _("load 1/5/15"), _("memory free"), _("disk free"), _("error")
        )
        for row in data:
            f = row["facts"]
            if f is None:
                table.add_row(row["host"], "", "", "", "", "", "", styled(row["error"], style="red"))
                continue
            table.add_row(
                row["host"],
                f["hostname"],
                f["os"],
                str(f["cpus"]),
                f"{f['load1']:.2f} {f['load5']:.2f} {f['load15']:.2f}",
                f"{human_bytes(f['mem_available_kb'] * 1024)} / {human_bytes(f['mem_total_kb'] * 1024)}",
                f"{human_bytes(f['disk_free_bytes'])} / {human_bytes(f['disk_total_bytes'])}",
                "",
            )
        console.print(table)

    output.current().result(outcomes, render)
    failed = [o for o in outcomes if o.facts is None]
    if any(o.exit_code == AuthError.exit_code for o in failed):
        raise AuthError(next(o.error for o in failed if o.exit_code == AuthError.exit_code) or "host key refused")
    if len(failed) == 1:
        raise ProblemFound(failed[0].error or "facts failed")
    if failed:
        raise ProblemFound(
            N_("{n_failed} hosts failed: {host}"), n_failed=len(failed), host=", ".join(o.host for o in failed)
        )


@dc.command("maintenance")
@click.argument("host", required=False)
@click.argument("state", type=click.Choice(["on", "off"]), required=False)
@click.option("--reason", default="", help="Why (shown to other operators and in the audit trail).")
@config_option(required=False)
@common_options
def dc_maintenance(host: str | None, state: str | None, reason: str, config_path: str | None) -> None:
    """Put HOST into maintenance (on) or back (off); without arguments list hosts in maintenance.

    Scheduled jobs and drills skip hosts in maintenance.
    """
    from dc.maintenance import load_maintenance, set_maintenance
    from dc.state import open_state

    consortium = session.config(config_path)[0] if config_path else None
    engine = open_state(consortium.control_db if consortium else None)
    if host is not None:
        if state is None:
            raise UsageError(N_("give the new state: bcpctl dc maintenance HOST on|off"))
        if consortium is not None and host not in consortium.hosts:
            raise UsageError(
                N_("unknown host '{host}' (known: {hosts})"),
                host=host,
                hosts=", ".join(consortium.hosts) or Message(N_("none")),
            )
        set_maintenance(engine, host, state == "on", reason=reason)
    current = [vars(m) for m in load_maintenance(engine).values()]

    def render(console: Console, data: list[dict[str, Any]]) -> None:
        if not data:
            console.print(_("no host is in maintenance"))
            return
        table = Table(_("host"), _("since"), _("by"), _("reason"))
        for row in data:
            table.add_row(row["host"], output.jst(row["since"]), row["operator"], row["reason"])
        console.print(table)

    output.current().result({"in_maintenance": current}, lambda c, d: render(c, d["in_maintenance"]))


@dc.command("cost-split")
@config_option()
@click.option(
    "--period",
    default=None,
    type=Checked("period", "dc.usage:month_bounds"),
    metavar="YYYY-MM",
    help="One month's share (default: the whole term).",
)
@click.option(
    "--fiscal-year",
    "fiscal_year",
    default=None,
    type=Checked("fiscal year", "dc.proration:parse_fiscal_year"),
    metavar="YYYY",
    help="Also each town's bill for that 年度 (April-March) by its months in the consortium: a town "
    "that joined late (tenants.<id>.joined) pays from its first month.",
)
@click.option(
    "--sheet",
    "sheet",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write the sheet for the 協議会: FILE.html (Japanese), or FILE.xlsx where openpyxl is installed.",
)
@common_options
def dc_cost_split(config_path: str, period: str | None, fiscal_year: str | None, sheet: str | None) -> None:
    """Split the shared contract among the members (均等割 + 人口割 + 利用量割): before, after and saving
    per town, ten years ahead, the start-date effect and subsidies; with --fiscal-year, that year's
    bills by months, late joiners paying from their first month."""
    from dataclasses import replace

    from bcpctl.fiscalyear import render_fiscal_year
    from dc.cost import parse_costs
    from dc.costsheet import write_sheet
    from dc.costsplit import split_costs
    from dc.proration import parse_fiscal_year, prorate_fiscal_year
    from dc.state import open_state
    from dc.usage import measure_usage

    consortium = session.config(config_path)[0]
    costs = parse_costs(consortium.costs, str(Path(config_path).resolve()), consortium.tenants)
    usage = measure_usage(open_state(consortium.control_db), period)
    tenants = {tid: (t.name, t.population) for tid, t in consortium.tenants.items()}
    split = split_costs(costs, tenants, usage, period=period)
    if sheet:
        write_sheet(split, consortium.consortium, Path(sheet))
    if fiscal_year is not None:
        starts = {tid: t.joined for tid, t in consortium.tenants.items() if t.joined is not None}
        year = prorate_fiscal_year(costs, tenants, starts, parse_fiscal_year(fiscal_year), usage)
        split = replace(split, fiscal_year=year)

    def render(console: Console, data: dict[str, Any]) -> None:
        projection = _("{years}y saving").format(years=data["projection_years"])
        term = _("{start}, {years} years").format(start=data["term"]["start"], years=data["term"]["years"])
        table = Table(
            _("tenant"), _("name"), _("population"), _("before"), _("after migration"), _("saving"), projection,
            title=data["period"] or term,
        )  # fmt: skip
        for t in data["tenants"]:
            table.add_row(
                t["tenant"],
                t["name"],
                f"{t['population_share']:.2%}",
                f"{t['before_yen']:,}" if t["before_yen"] is not None else "-",
                f"{t['yen']:,}",
                f"{t['saving_yen']:,} ({t['saving_pct']}%)" if t["saving_yen"] is not None else "-",
                f"{t['projection_saving_pct']}%" if t["projection_saving_pct"] is not None else "-",
            )
        before = f"{data['before_total_yen']:,}" if data["before_total_yen"] is not None else "-"
        saving = f"{data['saving_yen']:,} ({data['saving_pct']}%)" if data["saving_yen"] is not None else "-"
        table.add_row("", _("total"), "", before, f"{data['total_yen']:,}", saving, "", style="bold")
        console.print(table)
        console.print(_("usage shares: {resource_basis}").format(resource_basis=data["resource_basis"]))
        for s in data["subsidies"]:
            console.print(
                _("subsidy {name}: {yen} yen in year {year}").format(
                    name=s["name"], yen=f"{s['yen']:,}", year=s["year"]
                )
            )
        for t in data["tenants"]:
            if t["go_live"]:
                g = t["go_live"]
                console.print(
                    _("{name}: starting {actual} instead of {planned}: {yen} yen").format(
                        name=t["name"], actual=g["actual"], planned=g["planned"], yen=f"{g['yen']:,}"
                    )
                )
        if sheet:
            console.print(_("sheet: {sheet}").format(sheet=sheet))
        if data["fiscal_year"]:
            render_fiscal_year(console, data["fiscal_year"])

    output.current().result(split, render)


COMMANDS = [dc]
