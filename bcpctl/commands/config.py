"""``config check``: every problem of a configuration file at once, each with its line and field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from bcpctl import i18n, output
from bcpctl.i18n import _
from bcpctl.options import common_options, config_option
from dc.errors import N_, ConfigError, Message

if TYPE_CHECKING:
    from dc.configcheck import Section


@click.group("config")
def config() -> None:
    """The consortium configuration (bcpctl.yaml)."""


def _sections() -> list[Section]:
    """The sections that packages above dc validate, as every command that reads them does."""
    from bcpctl.web.settings import WebSettings, load_web_settings
    from dc.configcheck import Section
    from dc.cost import CostsConfig, parse_costs
    from failover.settings import DrillSettings, drill_settings
    from monitoring.schedule import plan_jobs
    from monitoring.tasks import TASKS
    from victim_support.settings import ExportSettings, load_export_settings

    return [
        Section("drills", DrillSettings, drill_settings),
        Section("exports", ExportSettings, load_export_settings),
        Section("web", WebSettings, load_web_settings),
        Section("costs", CostsConfig, lambda c, source: parse_costs(c.costs, source) if c.costs else None),
        Section("schedules", None, lambda c, _source: plan_jobs(c, TASKS)),
    ]


#: what config check counts (dc.configcheck), in the reader's language; English says "1 site", "2 sites"
_COUNTED = {
    "sites": N_("{n} site(s)"),
    "tenants": N_("{n} tenant(s)"),
    "systems": N_("{n} system(s)"),
    "hosts": N_("{n} host(s)"),
    "partners": N_("{n} partner(s)"),
}


def _counted(name: str, n: int) -> str:
    if name not in _COUNTED or i18n.language() not in i18n.LANGUAGES:
        return f"{n} {name if n != 1 else name[:-1]}"
    return _(_COUNTED[name]).format(n=n)


def _render(console: Console, d: dict[str, Any]) -> None:
    for p in d["problems"]:
        where = f"{d['config']}:{p['line']}" if p["line"] else d["config"]
        # a marked problem (pydantic's common ones: dc.validation) in the operator's language
        message = i18n.error_message(p["message"]) if isinstance(p["message"], Message) else p["message"]
        what = f"{p['field']}: {message}" if p["field"] else message
        console.print(f"{where}: {what}", markup=False)
    for warning in d["warnings"]:
        console.print(
            _("{config}: warning: {warning}").format(config=d["config"], warning=i18n.shown(warning)), markup=False
        )
    if d["ok"]:
        declared = ", ".join(_counted(name, n) for name, n in d["counts"].items())
        console.print(_("{config}: ok ({declared})").format(config=d["config"], declared=declared), markup=False)


@config.command("check")
@config_option()
@common_options
def config_check(config_path: str) -> None:
    """List every problem of the file, each with its line and field path; exit 2 when there is one.

    Checks what the commands check before they run, the sections of drills, exports, web,
    costs and schedules included.
    """
    from dc.configcheck import check_config
    from failover.copysign import config_advice

    report = check_config(config_path, _sections(), [config_advice])
    data = output.to_jsonable(report)
    data["ok"] = report.ok
    output.current().result(data, _render)
    if not report.ok:
        count = len(report.problems)
        if count == 1:
            raise ConfigError(N_("{config}: 1 problem"), config=report.config)
        raise ConfigError(N_("{config}: {count} problems"), config=report.config, count=count)


COMMANDS = [config]
