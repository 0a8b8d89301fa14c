"""Warnings, problems and leftovers the core hands to the CLI reach a Japanese operator in Japanese.

They are lists of lines (a run's ``warnings``, a shipping's ``problems``, a cleanup's
``leftovers``) that the CLI prints as they are, so each line must be a
:class:`~dc.errors.Message` made from an ``N_`` template: an English literal appended to such a
list is a line no catalog can translate.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring")
#: the lists of lines for people that the core returns and the CLI prints
LISTS = {"warnings", "problems", "leftovers", "notes", "lost_warnings"}
#: the records that carry such a line: class -> positions of its text (``check``'s problems, a
#: drill's checks, ``replicate verify``'s objects, key slots, requests, site hooks, imports)
RECORDS = {
    "ServerState": {2},
    "SiteCopy": {4},
    "SkippedCopy": {2},
    "Problem": {1, 3},
    "Check": {2},
    "ObjectProblem": {2},
    "SlotProblem": {1},
    "RequestProblem": {1},
    "HookResult": {3},
}
#: the keywords that carry it
TEXT_KEYWORDS = {"message", "detail", "problem"}
#: the names a line is kept under on its way to one of those (``problem = f"…"``, ``why = "…"``)
TEXT_NAMES = {"problem", "reason", "why", "detail", "error", "fix"}
#: a line with Japanese in it is bilingual by design (``保護なし … / unprotected …``)
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _english(value: ast.expr) -> bool:
    """A text made here in English: a literal with words, an f-string with words around its values,
    a sum or a ``"…".join`` of either, either side of ``or`` / ``if … else``."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, str) and bool(re.search(r"[A-Za-z]{2,}", value.value))
    if isinstance(value, ast.JoinedStr):
        return any(_english(part) for part in value.values if isinstance(part, ast.Constant))
    if isinstance(value, ast.BinOp):
        return _english(value.left) or _english(value.right)
    if isinstance(value, ast.BoolOp):
        return any(_english(v) for v in value.values)
    if isinstance(value, ast.IfExp):
        return _english(value.body) or _english(value.orelse)
    if isinstance(value, ast.List | ast.Tuple):
        return any(_english(v) for v in value.elts)
    if isinstance(value, ast.ListComp):
        return _english(value.elt)
    return False


def _loses_template(value: ast.expr) -> bool:
    """An error's English line put into a text (``f"{site}: {exc.message}"``): its template is lost
    with it, where ``Message(N_("{site}: {reason}"), site=site, reason=message_of(exc))`` keeps it."""
    if isinstance(value, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) and _loses_template(part.value) for part in value.values)
    if isinstance(value, ast.IfExp):
        return _loses_template(value.body) or _loses_template(value.orelse)
    return (
        isinstance(value, ast.Attribute)
        and value.attr == "message"
        and isinstance(value.value, ast.Name)
        and value.value.id == "exc"
    )


def _unmarked(value: ast.expr) -> bool:
    return _english(value) or _loses_template(value)


def _list_name(target: ast.expr) -> str:
    return target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""


def english_lines(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, source) of every English text put into one of the :data:`LISTS` in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _list_name(node.func)
            texts = [a for i, a in enumerate(node.args) if i in RECORDS.get(name, ())]
            texts += [k.value for k in node.keywords if (name in RECORDS and k.arg in TEXT_KEYWORDS) or k.arg in LISTS]
            if any(_unmarked(text) for text in texts):
                found.append((node.lineno, ast.unparse(node)))
                continue
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(_list_name(t) in TEXT_NAMES for t in targets)
            if named and _unmarked(node.value) and not _JAPANESE.search(ast.unparse(node.value)):
                found.append((node.lineno, ast.unparse(node)))
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("append", "extend", "insert")
            and _list_name(node.func.value) in LISTS
            and any(_unmarked(arg) for arg in node.args)
        ) or (
            isinstance(node, ast.AugAssign)
            and isinstance(node.op, ast.Add)
            and _list_name(node.target) in LISTS
            and _unmarked(node.value)
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def core_line_templates() -> list[str]:
    """The N_ templates of the lines this test guards (a Message appended or given to a record)."""
    found = set()
    for package in CORE:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and _list_name(node.func) in ("append", *RECORDS):
                    for arg in node.args:
                        template = _template(arg)
                        if template:
                            found.add(template)
    return sorted(found)


def _template(node: ast.expr) -> str | None:
    if (
        isinstance(node, ast.Call)
        and _list_name(node.func) == "Message"
        and node.args
        and isinstance(marked := node.args[0], ast.Call)
        and _list_name(marked.func) == "N_"
        and isinstance(marked.args[0], ast.Constant)
    ):
        return str(marked.args[0].value)
    return None


def test_the_detector_sees_each_shape() -> None:
    source = """
result.warnings.append(f"{site} is down")
warnings.append("no manifest: " + name)
report.problems += [f"{x}: missing"]
work.warnings.append("none" if a else Message(N_("x")))
result.warnings.append(Message(N_("{site} is down"), site=site))
result.warnings += promotion.warnings
shipped.problems.append(message_of(exc))
report.problems.append(Problem(key, f"pack has {size} bytes"))
checks.append(Check("smoke", False, detail="returned nothing"))
ShipResult(kind, source, notes=["not shipped"])
Check("smoke", False, Message(N_("returned {value!r}"), value=value))
shipped.problems.append(f"{site}: {exc.message}")
why = "counted once already" if seen else Message(N_("x"))
reason = f"保護なし / unprotected since {when}"
"""
    assert sorted(line for line, _s in english_lines(ast.parse(source))) == [2, 3, 4, 5, 9, 10, 11, 13, 14]


def test_no_core_warning_or_problem_line_is_english() -> None:
    """A new ``result.warnings.append(f"…")`` in the core fails here: pass ``Message(N_("…"), key=value)``."""
    found = []
    for package in CORE:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found += [f"{path.relative_to(ROOT)}:{n}: {s[:140]}" for n, s in english_lines(ast.parse(path.read_text()))]
    assert not found, "append Message(N_(template), key=value) instead:\n" + "\n".join(found)
