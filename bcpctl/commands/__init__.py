"""One module per command family; each exposes ``COMMANDS``, the click objects it adds.

The CLI imports a family only when one of its commands runs (``bcpctl.cli``): importing all
of them would delay every command, a backup or a replication included.
"""

from __future__ import annotations

import importlib

import click

#: command name -> the modules that build it (``key escrow`` is added by the escrow module).
#: Kept in step with the modules' ``COMMANDS`` by tests/bcpctl/test_cli.py.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "approver": ("bcpctl.commands.approver",),
    "audit": ("bcpctl.commands.audit",),
    "backup": ("bcpctl.commands.backup",),
    "check": ("bcpctl.commands.check",),
    "config": ("bcpctl.commands.config",),
    "control": ("bcpctl.commands.control",),
    "db": ("bcpctl.commands.db",),
    "dc": ("bcpctl.commands.dc",),
    "demo": ("bcpctl.commands.demo",),
    "diff": ("bcpctl.commands.diff",),
    "drill": ("bcpctl.commands.drill",),
    "dump": ("bcpctl.commands.browse",),
    "export": (
        "bcpctl.commands.export",
        "bcpctl.commands.exportbundle",
        "bcpctl.commands.exportlookup",
        "bcpctl.commands.exportreturn",
    ),
    "failback": ("bcpctl.commands.failover",),
    "failover": ("bcpctl.commands.failover",),
    "find": ("bcpctl.commands.browse",),
    "forget": ("bcpctl.commands.forget",),
    "key": ("bcpctl.commands.repo", "bcpctl.commands.escrow"),
    "ls": ("bcpctl.commands.browse",),
    "manifest": ("bcpctl.commands.manifest",),
    "monitoring": ("bcpctl.commands.monitoring",),
    "mount": ("bcpctl.commands.mount",),
    "partner": ("bcpctl.commands.partner",),
    "prune": ("bcpctl.commands.forget",),
    "registry": ("bcpctl.commands.registry",),
    "repair": ("bcpctl.commands.repair",),
    "replicate": ("bcpctl.commands.replicate",),
    "repo": ("bcpctl.commands.repo",),
    "restore": ("bcpctl.commands.restore",),
    "serve": ("bcpctl.commands.serve",),
    "snapshots": ("bcpctl.commands.repo",),
    "stats": ("bcpctl.commands.stats",),
    "status": ("bcpctl.commands.status",),
    "tag": ("bcpctl.commands.tag",),
    "tenant": ("bcpctl.commands.tenant",),
    "unlock": ("bcpctl.commands.unlock",),
    "verify-offsite": ("bcpctl.commands.verifyoffsite",),
    "wal": ("bcpctl.commands.wal",),
    "web": ("bcpctl.commands.web",),
}


def register(root: click.Group, name: str) -> None:
    """Add the family that builds ``name`` (an unknown name adds nothing)."""
    for module_name in COMMAND_MODULES.get(name, ()):
        for command in importlib.import_module(module_name).COMMANDS:
            root.add_command(command)


def register_all(root: click.Group) -> None:
    for name in COMMAND_MODULES:
        register(root, name)
