"""``registry seed|import``: synthetic 住民基本台帳 registries, and a joining town's real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bcpctl import i18n, output
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from bcpctl.params import FiniteFloat
from bcpctl.tables import Table
from dc.errors import N_


@click.group()
def registry() -> None:
    """Resident registries (住民基本台帳) of the tenants."""


@registry.command("seed")
@config_option()
@click.option("--tenant", "tenants", multiple=True, help="Tenant id (repeatable; default: all tenants).")
@click.option(
    "--scale",
    type=FiniteFloat(0, 10, min_open=True),
    default=1.0,
    show_default=True,
    help="Fraction of the configured population.",
)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help="Write DIR/<tenant>.sqlite.")
@click.option(
    "--seed",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Random seed (same seed, same registry).",
)
@click.option("--force", is_flag=True, help="Replace a database that is not a synthetic registry.")
@common_options
def registry_seed(
    config_path: str, tenants: tuple[str, ...], scale: float, out_dir: str | None, seed: int, force: bool
) -> None:
    """Write a realistic synthetic registry where the tenant's 住民基本台帳 system keeps it (or --out)."""
    from dc.config import load_config
    from victim_support.seed import seed_registries
    from victim_support.settings import load_export_settings

    config, resolved = load_config(config_path)
    settings = load_export_settings(config, str(resolved))
    results = seed_registries(
        config,
        settings,
        tenants=list(tenants) or None,
        scale=scale,
        out=Path(out_dir) if out_dir else None,
        seed=seed,
        force=force,
        config_dir=resolved.parent,
    )

    def render(console: Console, rows: list[dict[str, Any]]) -> None:
        headers = (
            _("tenant"),
            _("residents"),
            _("households"),
            "要支援者",
            "支援措置/抑止",
            "外字",
            "町字",
            "s",
            _("target"),
        )
        table = Table(*headers)
        for r in rows:
            c = r["counts"]
            table.add_row(
                r["tenant"],
                str(c["residents"]),
                str(c["households"]),
                str(c["support_needed"]),
                str(c["protected"]),
                str(c["fallback_names"]),
                f"{r['machiaza']}{'' if r['real_machiaza'] else ' ' + _('(generated)')}",
                f"{r['seconds']:.1f}",
                r["target"],
            )
        console.print(table)

    output.current().result(results, render)


@registry.command("import")
@config_option()
@click.option("--tenant", required=True, help="The tenant whose 住民基本台帳 system receives the registry.")
@click.option(
    "--layout", type=click.Choice(["chukan-std"]), default="chukan-std", show_default=True, help="File layout."
)
@click.option(
    "--file",
    "directory",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="The directory of the layout's record files and its count file.",
)
@common_options
def registry_import(config_path: str, tenant: str, layout: str, directory: str) -> None:
    """Import a joining town's 住民基本台帳 from its vendor's migration files (中間標準レイアウト):
    verified first (record counts, code tables, 和暦 dates, 個人番号), written in one transaction."""
    from dc.config import load_config
    from dc.errors import ProblemFound
    from victim_support.chukan import import_registry
    from victim_support.schema import open_registry
    from victim_support.settings import load_export_settings, registry_system

    config, resolved = load_config(config_path)
    if tenant not in config.tenants:
        from dc.errors import UsageError

        raise UsageError(
            N_("unknown tenant '{tenant}' (known: {tenants})"), tenant=tenant, tenants=", ".join(config.tenants)
        )
    system = config.systems[registry_system(config, load_export_settings(config, str(resolved)), tenant)]
    target = system.source.dsn or str((resolved.parent / (system.source.path or "")).resolve())
    if not system.source.dsn:
        Path(target).parent.mkdir(parents=True, exist_ok=True)  # a joining town's first registry
    report = import_registry(open_registry(target), tenant, config.tenants[tenant].lg_code, Path(directory), layout)

    def render(console: Console, _data: dict[str, Any]) -> None:
        for line in report.ja(lambda message: i18n.shown(message, "ja")):
            console.print(line, markup=False, highlight=False)

    output.current().result(report, render)
    if not report.imported:
        raise ProblemFound(
            N_("{n_problems} problem(s) in {directory}: nothing was imported"),
            n_problems=len(report.problems),
            directory=directory,
        )


COMMANDS = [registry]
