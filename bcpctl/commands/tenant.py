"""``tenant plan-join|join``: a municipality joining the consortium late (後乗り)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import output
from bcpctl.options import common_options, config_option
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
        ]
    ):
        fn = option(fn)
    return fn


def _joiner(
    name: str, lg_code: str, population: int, tenant_id: str | None, like: str | None, businesses: tuple[str, ...]
) -> Any:
    from failover.joining import Joiner

    return Joiner(tenant_id or f"lg{lg_code}", name, lg_code, population, like, businesses)


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
    """What joining would mean, before the agreement: every member's bill now and with the joiner,
    the repository's and the drill calendar's load, the recovery plan with it. Changes nothing."""
    from failover.joining import plan_join

    resolved, _, raw = _raw(config_path)
    plan = plan_join(raw, _joiner(**given), _usage(config_path), str(resolved))

    def render(console: Console, d: dict[str, Any]) -> None:
        table = Table("tenant", "name", "now", "with joiner", "change", title=f"{d['name']} joins as {d['tenant']}")
        for b in d["bills"]:
            now = f"{b['now_yen']:,}" if b["now_yen"] is not None else "-"
            change = f"{b['change_yen']:+,}" if b["change_yen"] is not None else "new"
            table.add_row(b["tenant"], b["name"], now, f"{b['with_joiner_yen']:,}", change)
        console.print(table)
        r, dr = d["repository"], d["drills"]
        console.print(f"systems adopted from {d['like']}: {len(d['systems'])}")
        console.print(
            f"repository: {r['bytes_now']:,} bytes now, joiner ~{r['joiner_bytes_estimate'] or 0:,} ({r['basis']})"
        )
        console.print(f"drills: {dr['systems_now']} → {dr['systems_with_joiner']} systems per cycle")
        for g in d["plan"]:
            console.print(f"tier {g['tier']}: {g['systems']} systems, {len(g['joiner'])} of the joiner")

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
@common_options
def tenant_join(config_path: str, out_path: str, keys_dir: str, first_run: bool, **given: Any) -> None:
    """Add the town: a new configuration file beside a reviewable diff (the old file is never edited),
    its keys, and the backup jobs the scheduler will run for it."""
    from monitoring.joinrun import join_tenant

    resolved, text, raw = _raw(config_path)
    result = join_tenant(resolved, text, raw, _joiner(**given), Path(out_path), Path(keys_dir), first_run=first_run)

    def render(console: Console, d: dict[str, Any]) -> None:
        console.print(f"new configuration: {d['config']} (review: {d['diff']})")
        console.print(f"keys: {', '.join(d['keys'])}")
        table = Table("system", "backup every (s)", "site")
        for job in d["schedule"]:
            table.add_row(job["system"], str(job["interval"]), job["site"])
        console.print(table)
        for b in d["first_backup"] or []:
            console.print(f"first backup {b['system']}: {'ok' if b['ok'] else 'FAILED ' + (b['error'] or '')}")
        if d["readiness"]:
            r = d["readiness"]
            console.print(f"readiness drill {r['run']}: {r['status']} {r['why'] or ''}")

    output.current().result(result, render)
    failed = [b["system"] for b in result.first_backup or [] if not b["ok"]]
    if failed or (result.readiness and result.readiness["status"] != "passed"):
        from dc.errors import ProblemFound

        raise ProblemFound(
            N_("the joiner's first run is not clean: {failed}"), failed=", ".join(failed) or result.readiness
        )


COMMANDS = [tenant]
