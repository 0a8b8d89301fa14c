"""The Japanese message catalog: extract what bcpctl shows, merge into the .po, compile the .mo.

    python scripts/catalog.py update    # new messages enter bcpctl.po with an empty translation
    python scripts/catalog.py compile   # bcpctl.mo from bcpctl.po (committed: `pip install .` ships it)

A development tool (Babel is a dev dependency): at run time the standard library's gettext
reads the compiled catalog. tests/bcpctl/test_i18n.py runs :func:`messages` and fails when a
message has no Japanese or the shipped .mo is older than the .po.
"""

from __future__ import annotations

import inspect
import io
import sys
from pathlib import Path

import click
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "bcpctl/locale/ja/LC_MESSAGES/bcpctl.po"
MO = PO.with_suffix(".mo")

#: the packages below bcpctl whose error messages the catalog carries (DESIGN.md's layers)
CORE_PACKAGES = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring")

#: click's plural messages (``ngettext``) that usage errors show
CLICK_PLURALS = (
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
    ("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"),
    ("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
    ("Takes {nargs} values but 1 was given.", "Takes {nargs} values but {len} were given."),
    ("{value!r} does not match the format {format}.", "{value!r} does not match the formats {formats}."),
    (
        "{len_type} values are required, but {len_value} was given.",
        "{len_type} values are required, but {len_value} were given.",
    ),
)


def messages() -> dict[str | tuple[str, str], str]:
    """msgid -> where it comes from: ``_()``/``N_()`` in bcpctl and the core, the root help, every
    command's summary, help and option help (what ``bcpctl X --help`` shows)."""
    sys.path.insert(0, str(ROOT))
    from bcpctl import i18n
    from bcpctl.cli import _register, cli
    from dc.schema import migration_titles

    found: dict[str | tuple[str, str], str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT / "bcpctl"), method_map=[("**.py", "python")], keywords={"_": None, "N_": None}
    ):
        if isinstance(message, str):
            found.setdefault(message, f"bcpctl/{filename}:{lineno}")
    found.update((message, where) for message, where in core_messages().items() if message not in found)
    for revision, title in migration_titles().items():  # what db upgrade / db current list
        found.setdefault(title, f"dc/migrations/versions/{revision}: title")
    found.setdefault(inspect.cleandoc(cli.help or ""), "bcpctl/cli.py: root help")
    _register()

    def options(command: click.Command, path: str) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and param.help:
                found.setdefault(param.help, f"{path} {param.opts[0]}: help")
            if isinstance(param, click.Option) and param.metavar:
                found.setdefault(param.metavar, f"{path} {param.opts[0]}: metavar")

    def texts(group: click.Group, path: str) -> None:
        """Every command's one-line description (what `--help` lists), its whole help and its options' help."""
        for name, command in sorted(group.commands.items()):
            found.setdefault(i18n.summary(command.help), f"{path} {name}: summary")
            found.setdefault(inspect.cleandoc(command.help or ""), f"{path} {name}: help")
            options(command, f"{path} {name}")
            if isinstance(command, click.Group):
                texts(command, f"{path} {name}")

    options(cli, "bcpctl")
    texts(cli, "bcpctl")
    for plural in CLICK_PLURALS:
        found.setdefault(plural, "click")
    found.pop("", None)
    return found


def core_messages() -> dict[str, str]:
    """msgid -> where: the error templates the core packages mark with ``dc.errors.N_``.

    The core never imports bcpctl; it only marks its English templates, and the CLI translates
    them where it prints ``bcpctl: error: …`` (:func:`bcpctl.i18n.error_message`).
    """
    found: dict[str, str] = {}
    for package in CORE_PACKAGES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT / package), method_map=[("**.py", "python")], keywords={"N_": None}
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, f"{package}/{filename}:{lineno}")
    return found


def update() -> Catalog:
    """The .po with every current message; translations of messages still in use are kept."""
    with PO.open("rb") as f:
        old = read_po(f, locale="ja")
    new = Catalog(locale="ja", domain="bcpctl", project="bcpctl", charset="utf-8", fuzzy=False)
    new.header_comment = old.header_comment
    for msgid, where in messages().items():
        kept = old.get(msgid if isinstance(msgid, str) else msgid[0])
        new.add(msgid, kept.string if kept else ("", "") if isinstance(msgid, tuple) else "", locations=[(where, 0)])
    buffer = io.BytesIO()
    write_po(buffer, new, width=0, omit_header=False, no_location=False, sort_output=True)
    PO.write_bytes(buffer.getvalue())
    return new


def compiled() -> bytes:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="ja")
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "update":
        update()
    elif action == "compile":
        MO.write_bytes(compiled())
    else:
        sys.exit("usage: catalog.py update|compile")
