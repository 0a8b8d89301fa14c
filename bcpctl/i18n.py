"""The CLI's language: Japanese under a ``ja_JP*`` locale (or ``BCPCTL_LANG=ja``), English otherwise.

Messages are marked with :func:`_` (translated where they are shown) or :func:`N_` (marked
where they are defined, translated later), extracted by Babel into
``bcpctl/locale/ja/LC_MESSAGES/bcpctl.po`` and read at run time by the standard library's
:mod:`gettext` from the compiled ``bcpctl.mo`` shipped beside it (``scripts/catalog.py``
extracts and compiles; tests/bcpctl/test_i18n.py fails when a message lacks its Japanese).

What the core puts into a template is translated too: a :class:`~dc.errors.Message` where the
core chose the words, a :class:`~dc.errors.Reason` where the OS or a library did
(``dc.errors.os_reason`` / ``library_reason``: English keeps their words, Japanese reads the
catalog's); tests/bcpctl/test_japanese_fragments.py fails on an English fragment in a Japanese line.

Only what a person reads changes: the ``bcpctl: error:`` prefix, exit codes and every
``--json`` document stay the same in both languages, so scripts never depend on a locale.
"""

from __future__ import annotations

import copy
import gettext
import inspect
import os
from functools import cache
from pathlib import Path

import click

from bcpctl.helpformat import CellContext
from dc.errors import BcpError, Message, Reason

DOMAIN = "bcpctl"
LOCALEDIR = Path(__file__).parent / "locale"
LANG_ENV = "BCPCTL_LANG"
#: the languages with a catalog; anything else is English, the language of the source
LANGUAGES = ("ja",)


def language(environ: dict[str, str] | None = None) -> str:
    """``ja`` or ``en``: ``BCPCTL_LANG`` first, then the variables gettext reads, in its order."""
    env = os.environ if environ is None else environ
    chosen = env.get(LANG_ENV, "")
    if not chosen:
        chosen = next((env[k] for k in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG") if env.get(k)), "")
    return "ja" if chosen.lower().startswith("ja") else "en"


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang not in LANGUAGES:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALEDIR, languages=[lang], fallback=True)


def _(message: str) -> str:
    """``message`` in the user's language (itself when the catalog lacks it)."""
    return gettext_in(language(), message)


def gettext_in(lang: str, message: str) -> str:
    """``message`` in ``lang`` (``ja`` or ``en``): for a surface whose reader is not the process's
    user, such as a web request with its own ``Accept-Language``."""
    return _catalog(lang).gettext(message) if message else message


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined; :func:`_` translates it where shown."""
    return message


def error_message(value: BcpError | Message, lang: str | None = None) -> str:
    """A core error's line (or a :class:`~dc.errors.Message`) in the user's language.

    The core marks its English templates with ``N_`` and keeps their parameters; the line is
    rebuilt from the translated template, parameters that are errors or messages themselves
    (a cause quoted in a refusal) translated the same way. A template the catalog lacks, or
    one whose translation does not fit its parameters, leaves the English line: never a
    traceback instead of an error. A :class:`~dc.errors.Reason` (an OS's or a library's words)
    is shown through its template, whatever its English says. ``lang`` is the reader's language when it is not the
    process's user (the web's requests); by default :func:`language`.
    """
    english = value.message if isinstance(value, BcpError) else str(value)
    lang = language() if lang is None else lang
    if lang not in LANGUAGES:
        return english
    template, params = value.template, value.params
    try:
        if not isinstance(value, Reason) and (template.format(**params) if params else template) != english:
            return gettext_in(lang, english)  # a message replaced after the error was made
        if not params:
            return gettext_in(lang, template)
        shown = {k: error_message(v, lang) if isinstance(v, BcpError | Message) else v for k, v in params.items()}
        return gettext_in(lang, template).format(**shown)
    except (KeyError, IndexError, ValueError):
        return english


def shown(value: object, lang: str | None = None) -> str:
    """A line the core handed over (a warning, a problem, a leftover) in the reader's language:
    a :class:`~dc.errors.Message` or an error through the catalog, anything else as it is."""
    return error_message(value, lang) if isinstance(value, BcpError | Message) else str(value)


def setup() -> None:
    """Let click's own messages (usage, errors, help headings) come from the same catalog.

    click translates through :func:`gettext.gettext`, whose language comes from ``LANGUAGE``
    and the locale variables only; ``LANGUAGE`` carries an explicit ``BCPCTL_LANG`` to it (and
    so to the tools bcpctl starts, as the user's own locale would). Without ``BCPCTL_LANG`` the
    environment is left as the user set it.
    """
    if os.environ.get(LANG_ENV):
        os.environ["LANGUAGE"] = language()
    gettext.bindtextdomain(DOMAIN, str(LOCALEDIR))
    gettext.textdomain(DOMAIN)


def summary(help_text: str | None) -> str:
    """A command's one-line description: the first paragraph of its help, on one line."""
    if not help_text:
        return ""
    return " ".join(inspect.cleandoc(help_text).split("\n\n")[0].split())


def localize(command: click.Command) -> click.Command:
    """A command's summary, help and option help in the user's language (idempotent).

    English is the source: nothing changes, so ``bcpctl --help`` and docs/commands.md (rendered
    from the same objects) stay identical.
    """
    if language() not in LANGUAGES:
        return command
    command.context_class = CellContext  # full-width help text aligned by display width
    if command.help:
        command.short_help = _(summary(command.help))
        command.help = _(inspect.cleandoc(command.help))
    if command.options_metavar:
        command.options_metavar = _(command.options_metavar)
    if isinstance(command, click.Group) and command.subcommand_metavar:
        command.subcommand_metavar = _(command.subcommand_metavar)
    for param in command.params:
        if isinstance(param, click.Option) and param.help:
            param.help = _(param.help)
        if isinstance(param, click.Option) and param.metavar:
            param.metavar = _(param.metavar)
        param.type = _localized_type(param.type)
    return command


#: click's names of its types, which its usage errors ("'x' is not a valid integer") and the help's
#: metavars (TEXT, INTEGER) show; click passes them untranslated, so each option gets its own copy
#: of the type under its Japanese name (click's module-wide instances stay as they are). An
#: option's own ``metavar=`` (FILE, TIME) is translated through the catalog like its help.
TYPE_NAMES = {
    "text": N_("text"),
    "integer": N_("integer"),
    "integer range": N_("integer range"),
    "float": N_("float"),
    "float range": N_("float range"),
    "boolean": N_("boolean"),
    "datetime": N_("datetime"),
    "uuid": N_("uuid"),
    "filename": N_("filename"),
    # bcpctl.params' own types that show their name as the metavar
    "duration": N_("duration"),
    "time": N_("type:time"),  # "time" alone is a table's column
    "pattern": N_("pattern"),
}


def _localized_type(param_type: click.ParamType) -> click.ParamType:
    if param_type.name not in TYPE_NAMES:
        return param_type
    shown = copy.copy(param_type)
    shown.name = _(TYPE_NAMES[param_type.name])
    return shown


#: click's own messages that bcpctl's users meet (click marks them for gettext, domain ``messages``)
CLICK_MESSAGES = (
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("No such command {name!r}."),
    N_("No such option {name!r}."),
    N_("Missing command."),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing parameter: {param_name}"),
    N_("Invalid value: {message}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Show this message and exit."),
    N_("Show the version and exit."),
    N_("%(prog)s, version %(version)s"),
    N_("Aborted!"),
    N_("default: {default}"),
    N_("env var: {var}"),
    N_("Do you want to continue?"),
    N_("Confirm the action without prompting."),
    # click.Path's refusals (``--password-file /tmp``): its noun, then the line around it
    N_("file"),
    N_("directory"),
    N_("path"),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is not readable."),
    N_("{name} {filename!r} is not writable."),
    N_("{name} {filename!r} is not executable."),
    N_("{value} is not in the range {range}."),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value!r} is not a valid boolean. Recognized values: {states}"),
    N_("{value!r} is not a valid UUID."),
    N_("Choose from:\n\t{choices}"),
    N_("Option {name!r} does not take a value."),
    N_("Argument {name!r} takes {nargs} values."),
    N_("Missing {param_type}"),
    N_("Could not open file {filename!r}: {message}"),
    N_("unknown error"),
    N_("Value must be an iterable."),
    N_("Positional arguments"),
    N_("deprecated"),
    N_("(dynamic)"),
    N_("DeprecationWarning: The command {name!r} is deprecated.{extra_message}"),
    N_("DeprecationWarning: The {param_type} {name!r} is deprecated.{extra_message}"),
    N_("Repeat for confirmation"),
    N_("Error: The two entered values do not match."),
    N_("Error: invalid input"),
    N_("Press any key to continue..."),
    # the help's marks that click translates as they are (``_(extra["required"])``) and the usage
    # line's placeholders (bcpctl.i18n.localize sets them per command)
    N_("required"),
    N_("[OPTIONS]"),
    N_("COMMAND [ARGS]..."),
)
