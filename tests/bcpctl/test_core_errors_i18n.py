"""Errors of the core packages reach a Japanese operator in Japanese, an English one unchanged.

The core (dc … monitoring) never imports bcpctl: it marks its English templates with
``dc.errors.N_`` and keeps their parameters; the CLI translates where it prints the line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import string
from datetime import date
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st

from bcpctl import i18n
from dc.errors import BcpError, Message, UsageError
from tests.bcpctl.test_i18n import _catalog_tool, _env
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
CORE = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring")

#: constructions (source prefixes) whose message is not a literal at the call: each passes on a
#: text marked where it was made (a re-raised error's template, a Message, a marked constant)
PASSED_ON = {
    "dc/errors.py": {
        "UsageError(message, **params)",
        "ProblemFound(message, **params)",
        "Message(error.template, **error.params)",
    },
    "dc/state.py": {
        "StoredTimeInvalid(value)",
        "ControlStateMissing(missing_message(path, given))",
        "StoredRowDamaged(table.name, key, column.name, exc.value)",
    },
    "backup/manifestchain.py": {"ManifestInvalid(exc.template, **exc.params)"},
    "failover/approval.py": {"ApprovalRefused(exc.template, **exc.params)"},
    "failover/report_pdf.py": {"ProblemFound(exc.template, **exc.params)"},
    "backup/restorer.py": {
        "Message(template, short_id=snapshot.short_id, count=result.failed_count, shown=shown, more=more)",
        "RestoreIncomplete(_failure_message(snapshot, result), result)",
    },
    "failover/abort.py": {"DrillAborted(self.reason or Message(N_('stopped')))"},
    "victim_support/invitation.py": {"AuthError(REFUSED)"},
    "victim_support/policy.py": {"Message(NEVER_EXPORTED[name])"},
    # a drill's advice: every value of its table (and the fixes beside it) is marked where it is
    "failover/measure.py": {"Message(_ADVICE.get(kind, N_(", "Message(fix)"},
    "dc/secrets.py": {"Message(noun)", "Message(name)"},
    # a stored check name matched against its template: every template is marked in CHECKS/ENDPOINTS
    "failover/checknames.py": {"Message(template, **params)"},
    "victim_support/store.py": {"PolicyRejected(decision.message(), decision.reasons)"},
    # a probe's or a sync's problem (a Message: tests/bcpctl/test_core_warnings_i18n.py) or the marked fallback
    "failover/control_postgres.py": {"ControlPlaneError(found.problem or Message(N_("},
    "failover/control_standby.py": {"ControlPlaneError(live.problem or Message(N_("},
    "monitoring/tasks.py": {
        "JobFailed(shipped.problems[0] if shipped.problems else Message(N_(",
        "JobFailed(result.problem() or Message(N_(",
        "JobFailed(shipped.problems[0])",
    },
    # pydantic's common messages: each template of its table is marked where the table is
    "dc/validation.py": {"Message(template, **params)"},
    # a stored run's line read back: its template was marked where the run made it
    "dc/storedmessages.py": {"Message(template, **params)"},
}


def _error_classes() -> dict[str, type]:
    """Every BcpError class of the core and the CLI by name, and Message."""
    for package in (*CORE, "bcpctl"):
        for module in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if ".migrations" not in module.name and ".demo" not in module.name:
                importlib.import_module(module.name)
    found: dict[str, type] = {"Message": Message}
    stack: list[type] = [BcpError]
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def _takes_params(cls: type) -> bool:
    init = inspect.signature(cls.__new__ if cls is Message else cls.__init__)
    return any(p.kind == p.VAR_KEYWORD for p in init.parameters.values())


def test_every_core_error_names_a_marked_template() -> None:
    """A new ``raise XError(f"…")`` in the core, whose words no catalog can hold, fails here; so does
    a template (core or CLI) whose ``{field}`` has no parameter or whose class takes none: either
    would raise a TypeError or KeyError instead of the error."""
    classes = _error_classes()
    unmarked, unfilled = [], []
    for package in (*CORE, "bcpctl"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            where = str(path.relative_to(ROOT))
            core = package != "bcpctl"  # the CLI may pass on a text it translated itself
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                first = node.args[0]
                marked = isinstance(first, ast.Call) and isinstance(first.func, ast.Name) and first.func.id == "N_"
                source = ast.unparse(node)
                if core and name in classes and not marked and not source.startswith(tuple(PASSED_ON.get(where, ()))):
                    unmarked.append(f"{where}:{node.lineno}: {source[:120]}")
                if name in classes and marked and isinstance(template := first.args[0], ast.Constant):  # type: ignore[attr-defined]
                    given = {k.arg for k in node.keywords if k.arg}
                    fields = {f for f, _c, _s in _fields(template.value)}
                    if not fields <= given or (fields and not _takes_params(classes[name])):
                        unfilled.append(f"{where}:{node.lineno}: {template.value!r} given {sorted(given)}")
    assert not unmarked, "mark the message with N_(template), key=value:\n" + "\n".join(unmarked)
    assert not unfilled, "every {field} of a template needs its key=value:\n" + "\n".join(unfilled)


def _fields(template: str) -> list[tuple[str, str, str]]:
    return sorted((f, c or "", s or "") for _, f, s, c in string.Formatter().parse(template) if f is not None)


def _core_templates() -> dict[str, str]:
    tool = _catalog_tool()
    with tool.PO.open("rb") as f:
        po = read_po(f, locale="ja")
    return {message: po[message].string for message in tool.core_messages()}


def test_core_messages_are_in_the_catalog_with_the_same_fields() -> None:
    """Each core template has Japanese that keeps every ``{field}`` (conversion and format too)."""
    templates = _core_templates()
    assert len(templates) > 600
    missing = [m for m, ja in templates.items() if not ja]
    assert not missing, "run `python scripts/catalog.py update`, translate, compile:\n" + "\n".join(missing)
    wrong = [f"{m!r} -> {ja!r}" for m, ja in templates.items() if _fields(m) != _fields(ja)]
    assert not wrong, "\n".join(wrong)


def _value(spec: str) -> st.SearchStrategy[object]:
    if spec:
        return st.floats(min_value=0, max_value=1e6, allow_nan=False)
    # paths, ids, codes, option names: what the operator must read back exactly
    return st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


@st.composite
def _built(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    template = draw(st.sampled_from(sorted(_TEMPLATES)))
    params = {f: draw(_value(s)) for f, _c, s in _fields(template)}
    return template, params


_TEMPLATES = {m for m in _core_templates() if _fields(m)}


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_built())
def test_translation_keeps_every_value_and_english_is_unchanged(built: tuple[str, dict[str, object]]) -> None:
    """Any core error, any values: the Japanese line holds each value as written; English is the message."""
    template, params = built
    error = UsageError(template, **params)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCPCTL_LANG", "en")
        assert i18n.error_message(error) == error.message == template.format(**params)
        mp.setenv("BCPCTL_LANG", "ja")
        japanese = i18n.error_message(error)
    assert japanese != error.message or template == _core_templates()[template]
    for name, conversion, spec in _fields(template):
        value = params[name]
        shown = repr(value) if conversion == "r" else value
        assert format(shown, spec) in japanese


def test_a_policy_refusal_is_japanese_down_to_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal quoting a reason (a Message made elsewhere) is translated through and through."""
    from victim_support.errors import PolicyRejected
    from victim_support.policy import Decision

    reason = Message("disaster date {disaster_date} is in the future", disaster_date=date(2099, 1, 1))
    more = Message(" (and {count} more)", count=2)
    decision = Decision(False, (reason, "b", "c"))
    error = PolicyRejected(decision.message(), decision.reasons)
    assert error.message == "request rejected: disaster date 2099-01-01 is in the future (and 2 more)"
    assert str(more) == " (and 2 more)"
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    assert i18n.error_message(error) == "申請は認められません: 災害発生日 2099-01-01 が未来の日付です (ほか 2 件)"
    assert isinstance(error.reasons[0], str) and error.reasons[0] == "disaster date 2099-01-01 is in the future"


def test_a_nested_error_is_translated_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    from backup.errors import NotARepository
    from storage.errors import StorageError

    cause = StorageError("object {key} not found in {url}", key="config", url="file:///srv/x")
    error = NotARepository("no usable bcpctl repository at {url}: {message_}", url="file:///srv/x", message_=cause)
    assert error.message == "no usable bcpctl repository at file:///srv/x: object config not found in file:///srv/x"
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    assert i18n.error_message(error) == (
        "file:///srv/x に使える bcpctl リポジトリがありません: file:///srv/x にオブジェクト config が見つかりません"
    )


def test_a_template_the_catalog_lacks_stays_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    error = UsageError("nothing {like} this is in the catalog", like="x")
    assert i18n.error_message(error) == "nothing x this is in the catalog"


@pytest.mark.parametrize(
    ("args", "japanese", "english", "code"),
    [
        (
            ("config", "check", "--config", "/nonexistent/bcpctl.yaml"),
            "/nonexistent/bcpctl.yaml: 設定ファイルが見つかりません",
            "/nonexistent/bcpctl.yaml: configuration file not found",
            2,
        ),
        (
            ("snapshots", "--repo", "/nonexistent/repo"),
            "file:///nonexistent/repo に bcpctl リポジトリがありません: ディレクトリが存在しません",
            "no bcpctl repository at file:///nonexistent/repo: the directory does not exist",
            2,
        ),
        (
            ("snapshots", "--repo", "s3://"),
            "S3 の URL にバケットがありません: s3:// (s3://BUCKET/PREFIX?endpoint=URL の形で指定してください)",
            "S3 URL without a bucket: s3:// (use s3://BUCKET/PREFIX?endpoint=URL)",
            2,
        ),
    ],
    ids=["config", "storage", "url"],
)
def test_core_errors_at_the_cli(cli: Cli, args: tuple[str, ...], japanese: str, english: str, code: int) -> None:
    """The same exit code and an empty stdout (also with --json) in both languages."""
    for lang, line in (({"BCPCTL_LANG": "ja"}, japanese), ({"LANG": "ja_JP.UTF-8"}, japanese), ({}, english)):
        for extra in ((), ("--json",)):
            shown = cli(*args, *extra, env=_env(lang))
            assert (shown.returncode, shown.stdout) == (code, ""), shown.stderr
            assert shown.stderr == f"bcpctl: error: {line}\n"
