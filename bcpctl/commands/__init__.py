"""One module per command family; each exposes ``COMMANDS``, the click objects it adds."""

from __future__ import annotations

import importlib

import click

# Keep alphabetical; a family that fails to import (missing optional system piece) must not
# take the whole CLI down, so each module only imports heavy dependencies inside commands.
_MODULES = [
    "bcpctl.commands.audit",
    "bcpctl.commands.backup",
    "bcpctl.commands.check",
    "bcpctl.commands.dc",
    "bcpctl.commands.demo",
    "bcpctl.commands.drill",
    "bcpctl.commands.escrow",
    "bcpctl.commands.export",
    "bcpctl.commands.failover",
    "bcpctl.commands.forget",
    "bcpctl.commands.registry",
    "bcpctl.commands.replicate",
    "bcpctl.commands.repo",
    "bcpctl.commands.serve",
    "bcpctl.commands.web",
]


def register_all(root: click.Group) -> None:
    for name in _MODULES:
        module = importlib.import_module(name)
        for command in module.COMMANDS:
            root.add_command(command)
