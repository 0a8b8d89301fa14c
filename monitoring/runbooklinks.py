"""The alert rules with each ``runbook_url`` as an absolute address of bcpctl's runbook page.

The shipped rules (monitoring/rules/bcpctl.rules.yml, promtool-tested as shipped) name each
runbook section by its path on ``bcpctl serve``: ``/runbook/ja#alert-<name>``. What a
receiver needs is a link that opens, and only the operator knows the address people reach
``bcpctl serve`` at, so :func:`rendered_rules` joins the paths to one configured external
URL and the rules deployed to Prometheus carry the whole address.

Why here and not elsewhere: Prometheus's ``$externalURL`` is Prometheus's own address, not
bcpctl's; an Alertmanager template (``{{ .ExternalURL }}``-style prefixing) would have to be
repeated in every receiver and would not reach what reads the rules without Alertmanager
(Prometheus's alerts page and API, Grafana's alert list). A rule that carries the whole
URL is a working link in all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit

from dc.errors import N_, UsageError
from storage.urlparts import endpoint_url

#: the shipped rules, and the page their runbook paths are on
RULES_FILE = "bcpctl.rules.yml"
RUNBOOK_PATH = "/runbook/ja"
_RUNBOOK_URL = re.compile(r'^(?P<head>\s*runbook_url:\s*)"(?P<path>/runbook/[a-z]+#[\w-]+)"\s*$', re.M)
_ALERT = re.compile(r"^\s*- alert:\s*(?P<name>\S+)\s*$", re.M)


@dataclass(frozen=True)
class AlertLink:
    alert: str
    runbook_url: str


@dataclass(frozen=True)
class RenderedRules:
    external_url: str
    #: the rules file, byte for byte as shipped except each runbook_url
    text: str
    links: tuple[AlertLink, ...]


def shipped_rules() -> str:
    return (resources.files("monitoring") / "rules" / RULES_FILE).read_text(encoding="utf-8")


def external_base(url: str) -> str:
    """``url`` checked as where people reach ``bcpctl serve`` (http/https, a host, no query or fragment)."""
    checked = endpoint_url(url.strip(), "--external-url")
    parts = urlsplit(checked)
    if parts.query or parts.fragment:
        raise UsageError(N_("--external-url takes no query or fragment: {url}"), url=checked)
    return checked.rstrip("/")


def rendered_rules(external_url: str, source: str | None = None) -> RenderedRules:
    """The rules with every ``runbook_url`` path prefixed by ``external_url`` (a reverse proxy's path kept)."""
    base = external_base(external_url)
    text = shipped_rules() if source is None else source
    links: list[AlertLink] = []
    out: list[str] = []
    alert = ""
    for line in text.splitlines(keepends=True):
        if found := _ALERT.match(line):
            alert = found["name"]
        if found := _RUNBOOK_URL.match(line):
            url = base + found["path"]
            links.append(AlertLink(alert, url))
            line = f'{found["head"]}"{url}"' + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return RenderedRules(base, "".join(out), tuple(links))
