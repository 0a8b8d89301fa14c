"""The ``bcpctl`` command: a root group, command registration, and one error policy.

Exit codes: 0 ok; 1 the operation found a problem (damage, failed verification); 2 usage or
configuration error; 3 authentication or key error. Errors are one line on stderr; a
traceback only with ``--debug`` (or ``BCPCTL_DEBUG=1``). Anticipated OS conditions are one
line too: no permission, a read-only filesystem or a path through a file is 2 (point the
command elsewhere), a full disk, exhausted file descriptors or an I/O error is 1.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback

import click

from bcpctl import i18n, output
from bcpctl.i18n import _
from bcpctl.options import DEBUG_ENV, common_options
from dc.errors import BcpError, os_condition, unreachable_database
from dc.plaintext import one_line


class _LazyGroup(click.Group):
    """The root group: a command family is imported when one of its commands is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from bcpctl.commands import COMMAND_MODULES

        return sorted(set(self.commands) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            from bcpctl.commands import register

            register(self, cmd_name)
        command = self.commands.get(cmd_name)
        return _localized(command) if command is not None else None


def _localized(command: click.Command) -> click.Command:
    """The command, its subcommands and their options, in the user's language."""
    i18n.localize(command)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _localized(sub)
    return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@common_options
@click.version_option(package_name="bcpctl")
def cli() -> None:
    """bcpctl keeps a shared municipal data center's core systems recoverable through a disaster.

    It backs systems up encrypted and deduplicated, replicates only ciphertext offsite,
    proves recovery by drills, and builds lawful victim-support exports from the replica.
    """


def _register() -> None:
    """Every command family at once (the command reference walks them all)."""
    from bcpctl.commands import register_all

    register_all(cli)


def main(argv: list[str] | None = None) -> None:
    try:
        _main(argv)
    finally:
        # Interpreter shutdown would walk every object still alive (botocore's models) in one last
        # cycle collection; frozen ones are skipped (docs/performance.md: >10% of a replication).
        gc.freeze()


def _main(argv: list[str] | None) -> None:
    output.claim_standard_streams()
    i18n.setup()
    i18n.localize(cli)
    try:
        cli.main(args=argv, prog_name="bcpctl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail(_("aborted"), 130)
    except click.ClickException as exc:
        _fail(_("{message} (see --help)").format(message=exc.format_message()), 2)
    except BcpError as exc:
        _fail(i18n.error_message(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail(_("interrupted"), 130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: say so plainly, with the traceback on request
        known = unreachable_database(exc) or os_condition(exc)
        if known is not None:
            _fail(i18n.error_message(known), known.exit_code)
        _fail(
            _("internal error: {error} (run with --debug for details)").format(error=f"{type(exc).__name__}: {exc}"), 1
        )
    sys.exit(0)


def _fail(message: str, code: int) -> None:
    if os.environ.get(DEBUG_ENV) and sys.exc_info()[0] is not None:
        traceback.print_exc()
    # no template holds a line break: one in the message came from a parameter (a file's name,
    # an OS's words), and the whole line is what the reader needs, escaped, never its start
    first_line = one_line(message.strip()) or "error"
    # the prefix stays English in every language: scripts and log filters match it
    sys.stderr.write(f"bcpctl: error: {first_line}\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
