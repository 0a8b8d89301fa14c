"""The command reference (docs/commands.md), rendered from the CLI's own help texts.

The README links to it and a test fails when it drifts from the code, so the reference
cannot go stale: regenerate with ``python -m bcpctl.reference > docs/commands.md``.
"""

from __future__ import annotations

import click


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _walk(command.commands[name], [*path, name])
    return found


def render() -> str:
    from bcpctl.cli import _register, cli

    _register()
    lines = [
        "# bcpctl command reference",
        "",
        "Generated from the CLI's help (`python -m bcpctl.reference > docs/commands.md`); a test keeps it in sync.",
        "Every command also takes `--json` (one JSON document on stdout) and `--debug` (tracebacks).",
        "Exit codes: 0 ok, 1 a problem was found, 2 usage or configuration error, 3 authentication or key error.",
        "",
    ]
    for path, command in _walk(cli, ["bcpctl"])[1:]:
        # The root group's settings, given explicitly: click caches a command's help option the
        # first time any context asks, so the text must not depend on which context came first.
        settings = cli.context_settings
        ctx = click.Context(
            command,
            info_name=" ".join(path),
            terminal_width=100,
            max_content_width=settings["max_content_width"],
            help_option_names=settings["help_option_names"],
        )
        if hasattr(command, "_help_option"):
            command._help_option = None
        lines += [f"## {' '.join(path)}", "", "```", command.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
