"""Every line a command prints for people goes through the catalog: no English literal reaches a
Japanese operator's console.

The catalog's completeness (tests/bcpctl/test_i18n.py) only sees what is marked; this test finds
what is not. It reads the source of the commands and of the helpers that render for them, and
fails on a string literal with English words that reaches the console unmarked: an argument of
``print``/``echo``/``notice``/``warn``/``progress``/``confirm``/``prompt``, a table's title,
headers and cells, or any text built inside a render function (a function that takes the
``Console``). ``--json`` keeps its keys and codes: a literal used as a key (``d["snapshots"]``,
``.get("ok")``, ``== "failed"``) is data, not a line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the commands, and the modules of bcpctl that render a command's result
SOURCES = sorted((ROOT / "bcpctl/commands").glob("*.py")) + [
    ROOT / f"bcpctl/{name}.py" for name in ("anomalytext", "session", "tables", "fiscalyear")
]
#: calls whose arguments are shown to people as they are
SINKS = frozenset(
    {"print", "echo", "secho", "notice", "warn", "progress", "confirm", "prompt", "Table", "add_row", "add_column"}
)
#: calls whose string arguments are the message's source or its data (``shown``'s: a language code),
#: never shown as they are
MARKERS = frozenset({"_", "N_", "ngettext", "error_message", "shown"})
#: literals that are read back as typed or are not words (a command, a unit of a machine format)
ALLOWED = frozenset(
    {
        "bcpctl",  # the program's name, typed as it is
        "JST",  # the zone label: the same in both languages
        "approvers:",  # approver enrol's lines of YAML to paste into bcpctl.yaml: a key, not a word
    }
)
#: a label written "日本語 / English" (bcpctl status's lines): English beside, never alone
_BILINGUAL = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
#: upper-case words that are words, not codes (RPO, WAL, JSON stay as they are)
SHOUTED = frozenset(
    {"ABORTED", "BROKEN", "CONFLICT", "DAMAGED", "FAILED", "KILLED", "NEW", "NO", "NOT", "OVER", "OVERDUE"}
    | {"PASSED", "RUNNING", "UNPROTECTED", "UNSIGNED", "KNOWN", "OTHER", "LEFT", "OK", "YES"}
)
#: a command line to type as it is (``  bcpctl export lookup-approve {id} --approver NAME``)
_COMMAND = re.compile(r"\s*bcpctl [a-z][a-z -]*(\s|$)(?!.*:)")
_MARKUP = re.compile(r"\[/?[a-z ]*\]")
#: what a person copies as it is: commands in quotes, options, paths, placeholders, codes
_VERBATIM = re.compile(r"'[^']*'|`[^`]*`|--?[\w-]+|\{[^{}]*\}|\S*[/_=$@.]\S*")


def english(text: str) -> bool:
    """Whether ``text`` shown to a Japanese reader would hold English words."""
    if text in ALLOWED or (_BILINGUAL.search(text) and " / " in text) or _COMMAND.match(text):
        return False
    rest = _VERBATIM.sub(" ", _MARKUP.sub(" ", text))
    return any((not w.isupper() or w in SHOUTED) and w not in ALLOWED for w in re.findall(r"[A-Za-z]{2,}", rest))


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _shows(call: ast.Call) -> bool:
    """Whether ``call`` shows its arguments to people (``confirm``/``prompt``: click's, not a core function's)."""
    name = _name(call)
    if name in {"confirm", "prompt"}:
        return ast.unparse(call.func) in {"click.confirm", "click.prompt"}
    return name in SINKS


def _literals(node: ast.AST) -> Iterator[ast.Constant | ast.JoinedStr]:
    """The string literals ``node`` would show: not the msgids of ``_()``, not keys or comparisons."""
    if isinstance(node, ast.Call) and _name(node) in MARKERS:
        return
    if isinstance(node, ast.Call) and _name(node) in {"get", "pop", "setdefault", "startswith", "endswith"}:
        yield from _literals(node.func)
        for arg in node.args[1:]:
            yield from _literals(arg)
        return
    if isinstance(node, ast.Subscript):
        yield from _literals(node.value)
        return
    if isinstance(node, ast.Compare):
        return
    if isinstance(node, ast.Dict):  # a result's keys; its values are looked at
        for value in node.values:
            yield from _literals(value)
        return
    if isinstance(node, ast.keyword) and node.arg in {"style", "justify", "end", "sep", "markup", "unit", "overflow"}:
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
        return
    if isinstance(node, ast.JoinedStr):
        if any(isinstance(v, ast.Constant) and english(v.value) for v in node.values):
            yield node
        for v in node.values:
            if isinstance(v, ast.FormattedValue):
                yield from _literals(v.value)
        return
    for child in ast.iter_child_nodes(node):
        yield from _literals(child)


def _render_functions(tree: ast.AST) -> Iterator[ast.FunctionDef]:
    """Functions that draw for people: they take the ``Console`` (or a rich renderable's console)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
            a.annotation is not None and "Console" in ast.unparse(a.annotation) for a in node.args.args
        ):
            yield node


def _body_without_docstring(function: ast.FunctionDef) -> list[ast.stmt]:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[1:]
    return body


def unmarked(source: str, where: str) -> list[str]:
    """``where:line: literal`` of every English literal ``source`` shows unmarked."""
    tree = ast.parse(source)
    found: dict[tuple[int, int], str] = {}

    def report(literal: ast.Constant | ast.JoinedStr) -> None:
        text = literal.value if isinstance(literal, ast.Constant) else ast.unparse(literal)
        if isinstance(literal, ast.JoinedStr) or english(str(text)):
            where_ = (literal.lineno, literal.col_offset)
            found.setdefault(where_, f"{where}:{literal.lineno}: {str(text)[:100]!r}")

    #: module constants holding a text (``_NO_GRACE = "…"``): shown through their name
    constants = {
        target.id: node.value
        for node in tree.body  # type: ignore[attr-defined]
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant | ast.JoinedStr)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _shows(node):
            for arg in [*node.args, *node.keywords]:
                for literal in _literals(arg):
                    report(literal)
                value = arg.value if isinstance(arg, ast.keyword) else arg
                if isinstance(value, ast.Name) and value.id in constants:
                    for literal in _literals(constants[value.id]):
                        report(literal)
    for function in _render_functions(tree):
        for stmt in _body_without_docstring(function):
            for literal in _literals(stmt):
                report(literal)
    return [found[line] for line in sorted(found)]


def test_the_detector_sees_what_it_is_for() -> None:
    source = """
_SHOUTED = "data is deleted at once"
def render(console: Console, d: dict) -> None:
    console.print(f"{d['n']} snapshots")
    status = "ok" if d["ok"] else _("failed")
    table = Table(_("System"), "Status", title="Runs")
    console.print(_("{n} snapshots").format(n=d["n"]), style="bold")
    if d.get("state") == "failed":
        console.print("{}: {}".format(d["a"], d["b"]))
    output.current().warn(_SHOUTED)
"""
    found = [line.split(": ", 1)[1] for line in unmarked(source, "probe")]
    assert found == [
        "'data is deleted at once'",
        "'f\"{d[\\'n\\']} snapshots\"'",
        "'ok'",
        "'Status'",
        "'Runs'",
    ], found
    assert not english("{}: {}") and not english("[red]{name}[/red]") and not english("'bcpctl check' --json /srv")
    assert not english("  bcpctl export lookup-approve ") and english("bcpctl web: serving {url}")
    assert english("FAILED: {error}") and english("no errors were found")


def test_no_command_prints_an_english_literal() -> None:
    """Mark the line with ``_()`` (a ``{name}`` placeholder for each value, ``.format(name=…)``),
    run ``scripts/catalog.py update``, give it its Japanese and compile."""
    found = [line for path in SOURCES for line in unmarked(path.read_text(), str(path.relative_to(ROOT)))]
    assert not found, "wrap these in _():\n" + "\n".join(found)
