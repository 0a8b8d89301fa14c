"""The site-switching hooks of failover and failback: one small interface, Ansible behind it.

Failover fences the old site (no more writes there: two sites accepting writes would split
the residents' records) and promotes the new one (service endpoints point at it); failback
lifts the fence on the recovered primary and promotes it again, then lifts the offsite's
fence without promoting it. :class:`Hooks` is all the failover code knows; :class:`AnsibleHooks`
runs ``playbooks/fence-site.yml``, ``promote-site.yml``, ``failback.yml`` and
``unfence-site.yml`` through ``dc.ansible.run_playbook`` (imported
lazily, so drills work on a controller without Ansible); :class:`ManualHooks` is for sites
whose endpoints operators switch by hand — it changes nothing and says so in the report.

A fence on a site that is gone reports its hosts unreachable. That is what a disaster looks
like, so it does not stop the failover; a host that answered and *failed* to fence does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from dc.config import Consortium
from dc.errors import N_, Message


@dataclass
class HookResult:
    action: str
    site: str
    ok: bool
    detail: str = ""
    #: per host: ok, changed, failed, unreachable or skipped
    hosts: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s == "failed")

    @property
    def unreachable_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s == "unreachable")


class Hooks(Protocol):
    def fence(self, site: str, run_id: str) -> HookResult:
        """Stop ``site`` from accepting writes."""
        ...

    def promote(self, site: str, run_id: str) -> HookResult:
        """Point the service endpoints at ``site``."""
        ...

    def failback(self, site: str, run_id: str) -> HookResult:
        """Lift the fence on ``site`` and point the service endpoints back at it."""
        ...

    def unfence(self, site: str, run_id: str) -> HookResult:
        """Lift the fence on ``site`` without pointing the service endpoints at it."""
        ...


def fence_allows_failover(result: HookResult, *, planned: bool) -> bool:
    """Unreachable hosts are a dead site and acceptable in a disaster; a host that answered and
    failed to fence never is, and a planned switchover needs every host fenced."""
    if result.ok:
        return True
    return not planned and not result.failed_hosts and bool(result.unreachable_hosts)


class ManualHooks:
    """No automation: operators fence and switch endpoints by hand; the report says so."""

    def _manual(self, action: str, site: str) -> HookResult:
        return HookResult(
            action,
            site,
            True,
            Message(
                N_("manual: operators {action} site {site} by hand (drills.failover.hooks)"), action=action, site=site
            ),
        )

    def fence(self, site: str, run_id: str) -> HookResult:
        return self._manual("fence", site)

    def promote(self, site: str, run_id: str) -> HookResult:
        return self._manual("promote", site)

    def failback(self, site: str, run_id: str) -> HookResult:
        return self._manual("failback", site)

    def unfence(self, site: str, run_id: str) -> HookResult:
        return self._manual("unfence", site)


class AnsibleHooks:
    """The playbooks in ``playbooks/`` through ``dc.ansible.run_playbook``, inventory from the configuration."""

    def __init__(self, config: Consortium, config_dir: Path | None, state: Engine | None = None) -> None:
        self.config = config
        self.config_dir = config_dir
        self.state = state

    def _run(self, action: str, playbook: str, site: str, extravars: dict[str, Any]) -> HookResult:
        try:
            from dc.ansible import run_playbook
            from dc.inventory import build_inventory
        except ImportError as exc:
            # Not a crash mid-failover: a failed hook, so the failover stops before changing anything.
            return HookResult(
                action,
                site,
                False,
                Message(N_("Ansible hooks unavailable ({exc}); set drills.failover.hooks"), exc=exc),
            )

        outcome = run_playbook(
            playbook,
            inventory=build_inventory(self.config, self.config_dir),
            extravars=extravars,
            state=self.state,
        )
        hosts = {h.host: h.status for h in outcome.hosts}
        detail = outcome.error or f"{playbook}: {outcome.status}"
        messages = [f"{h.host}: {h.message}" for h in outcome.hosts if h.message]
        if messages:
            detail += " — " + "; ".join(messages[:3])
        return HookResult(action, site, bool(outcome.ok), detail, hosts, outcome.run_id)

    def fence(self, site: str, run_id: str) -> HookResult:
        return self._run("fence", "fence-site", site, {"fence_site": site, "failover_id": run_id})

    def promote(self, site: str, run_id: str) -> HookResult:
        return self._run("promote", "promote-site", site, {"promote_site": site, "failover_id": run_id})

    def failback(self, site: str, run_id: str) -> HookResult:
        return self._run("failback", "failback", site, {"failback_site": site, "failover_id": run_id})

    def unfence(self, site: str, run_id: str) -> HookResult:
        return self._run("unfence", "unfence-site", site, {"unfence_site": site, "failover_id": run_id})


def configured_hooks(kind: str, config: Consortium, config_dir: Path | None, state: Engine | None) -> Hooks:
    return ManualHooks() if kind == "manual" else AnsibleHooks(config, config_dir, state)
