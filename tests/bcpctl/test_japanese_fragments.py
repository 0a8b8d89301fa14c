"""A Japanese error line holds no English fragment: not the OS's ``strerror``, not a library's text.

The templates are translated (tests/bcpctl/test_core_errors_i18n.py); these tests look at what is
put into them. Every errno, every core template that quotes an OS error or a connection failure,
and a handful of real failures at the CLI: what a Japanese operator reads carries English only
where it must be read back exactly (paths, URLs, options, environment variables, codes).
"""

from __future__ import annotations

import ast
import errno
import os
import pickle
import re
import socket
import sqlite3
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcpctl import i18n
from dc.errors import (
    _LIBRARY_REASONS,
    _SQLITE_CONDITIONS,
    OS_REASONS,
    UsageError,
    library_reason,
    os_condition,
    os_reason,
)
from tests.bcpctl.test_core_errors_i18n import _core_templates
from tests.bcpctl.test_i18n import _env
from tests.conftest import Cli

#: names and formats the operator types or reads as they are, whatever the language
KEPT = {"bcpctl", "SQLite", "PostgreSQL", "glob", "tar", "age", "latest"}
#: what carries English by design: quoted tokens, options, paths, URLs, names with '_', '.', '=' or '$'
_VERBATIM = re.compile(r"'[^']*'|\"[^\"]*\"|--?[\w-]+|\S*[/_=$@:.]\S*")


_WITH_DIGITS = re.compile(r"\b[A-Za-z0-9]*[0-9][A-Za-z0-9]*\b", re.ASCII)


def english_words(line: str, *values: str) -> list[str]:
    """The ASCII words of ``line`` a Japanese operator would have to read in English.

    ``values`` (the paths and ids the test passed in) are what the line must show as given;
    upper-case words are codes or names (ENOENT, FIFO, BCPCTL_PASSWORD, YAML).
    """
    for value in sorted(values, key=len, reverse=True):
        line = line.replace(value, " ")
    line = _VERBATIM.sub(" ", line)
    line = _WITH_DIGITS.sub(" ", line)  # ids and versions: '69ecb2f5' holds no English word 'ecb'
    return [w for w in re.findall(r"[A-Za-z]{2,}", line) if not w.isupper() and w not in KEPT]


def test_the_detector_sees_the_fragments_it_is_for() -> None:
    assert english_words("バックアップ元 /x を読めません: No such file or directory", "/x") == [
        "No",
        "such",
        "file",
        "or",
        "directory",
    ]
    assert english_words("'bcpctl key list' で確認 $BCPCTL_PASSWORD --password-file OS のエラー ENOLINK") == []
    assert english_words("スナップショット 69ecb2f5 の形に合わせた架空の 469 行 (b7cb4068, v2)") == []
    assert english_words("スナップショット 69ecb2f5 shaped") == ["shaped"]


def _strerror_templates() -> list[tuple[str, str]]:
    """(template, field) of every core template whose field quotes an OS error."""
    found = []
    for template in sorted(_core_templates()):
        fields = [f for _, f, _s, _c in string.Formatter().parse(template) if f]
        found += [(template, f) for f in fields if f == "strerror"]
    return found


_QUOTING = _strerror_templates()
_CODES = sorted(errno.errorcode)
_VALUE = st.sampled_from(["/srv/データ/a b", "file:///srv/repo", "s3://bucket/p", "p-db", "keys/0a1b"])


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.sampled_from(_QUOTING), st.sampled_from(_CODES), _VALUE)
def test_every_errno_in_every_template_reads_japanese(quoting: tuple[str, str], code: int, value: str) -> None:
    """Any errno quoted by any core template: the English line keeps the system's own words, the
    Japanese line has none of them (the table's words, or the errno's code for an unusual one)."""
    template, field = quoting
    others = {f for _, f, _s, _c in string.Formatter().parse(template) if f and f != field}
    exc = OSError(code, os.strerror(code), value)
    error = UsageError(template, **{f: value for f in others}, **{field: os_reason(exc)})
    assert error.message == template.format(**{f: value for f in others}, **{field: os.strerror(code)})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCPCTL_LANG", "ja")
        japanese = i18n.error_message(error)
    assert value in japanese or not others
    assert english_words(japanese, value) == [], japanese


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.sampled_from(sorted(OS_REASONS)), _VALUE)
def test_an_anticipated_os_condition_reads_japanese(code: int, value: str) -> None:
    """What the CLI shows for an OSError nobody caught (a full disk, no permission)."""
    error = os_condition(OSError(code, os.strerror(code), value))
    if error is None:
        return
    assert error.message.startswith(os.strerror(code).lower())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCPCTL_LANG", "ja")
        japanese = i18n.error_message(error)
    assert english_words(japanese, value) == [], japanese


@pytest.mark.parametrize("words", sorted(_SQLITE_CONDITIONS))
def test_a_local_sqlite_failure_reads_japanese(words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    error = os_condition(sqlite3.OperationalError(words))
    assert error is not None and error.message.endswith(words)
    monkeypatch.setenv("BCPCTL_LANG", "ja")
    assert english_words(i18n.error_message(error)) == [], i18n.error_message(error)


_LIBRARY_TEXTS = [words for words, _t in _LIBRARY_REASONS] + [os.strerror(code) for code in OS_REASONS]


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.sampled_from(_LIBRARY_TEXTS), st.sampled_from(["", "connection failed: ", 'FATAL:  role "x": ']))
def test_a_connection_failure_reads_japanese(words: str, prefix: str) -> None:
    """libpq's and paramiko's texts: English keeps the first line, Japanese names the condition."""
    text = f'{prefix}connection to server at "127.0.0.1", port 1 failed: {words}\nIs the server running?'
    reason = library_reason(Exception(text))
    assert reason == text.splitlines()[0]
    error = UsageError("cannot connect to {dsn}: {exc}", dsn="host=127.0.0.1 port=1", exc=reason)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BCPCTL_LANG", "ja")
        japanese = i18n.error_message(error)
    assert english_words(japanese, "host=127.0.0.1 port=1") == [], japanese


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _failures(tmp: Path) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """name -> (arguments, values the line shows as given): failures an operator meets first."""
    (tmp / "empty").write_text("")
    (tmp / "bad.yaml").write_text("sites: [\n")
    (tmp / "list.yaml").write_text("- a\n")
    (tmp / "file").write_text("x")
    os.mkfifo(tmp / "fifo")
    repo, port = str(tmp / "repo"), _closed_port()
    dsn = f"host=127.0.0.1 port={port} dbname=x"
    return {
        "no repository": (("snapshots", "--repo", "/nonexistent/repo"), ("/nonexistent/repo",)),
        "no password file": (("snapshots", "--repo", repo, "--password-file", "/nonexistent/pw"), ()),
        "password file is a directory": (("snapshots", "--repo", repo, "--password-file", str(tmp)), (str(tmp),)),
        "password file is a FIFO": (("snapshots", "--repo", repo, "--password-file", str(tmp / "fifo")), ()),
        "empty password file": (("snapshots", "--repo", repo, "--password-file", str(tmp / "empty")), ()),
        "wrong password": (("snapshots", "--repo", repo), (repo,)),
        "missing source": (("backup", "run", "--repo", repo, "--source", "path:/nonexistent", "--system", "s"), ()),
        "missing command": (("backup", "run", "--repo", repo, "--source", "command:/no/cmd", "--system", "s"), ()),
        "postgres port closed": (("backup", "run", "--repo", repo, "--source", f"postgres:{dsn}", "--system", "s"), ()),
        "repository under a file": (("repo", "init", "--repo", str(tmp / "file" / "r")), ()),
        "broken YAML": (("status", "--config", str(tmp / "bad.yaml")), ()),
        "not a mapping": (("status", "--config", str(tmp / "list.yaml")), ()),
        "mistyped option": (("status", "--confg", "x"), ()),
        "password in an sftp URL": (("snapshots", "--repo", "sftp://u:pw@h/x"), ()),
        "credentials in a nested URL": (("snapshots", "--repo", "s3://b/p?endpoint=http://u:p@127.0.0.1:9"), ()),
        "endpoint not HTTP": (("snapshots", "--repo", "s3://b/p?endpoint=ftp://x"), ()),
    }


def test_failures_at_the_cli_read_japanese(cli: Cli, tmp_path: Path) -> None:
    """The same exit code in both languages; the Japanese line has no English words, the English
    one is English (so the check is not passing on an empty line). A clean ``check`` too."""
    assert cli("repo", "init", "--repo", str(tmp_path / "repo")).returncode == 0
    english_env, japanese_env = _env({}), _env({"BCPCTL_LANG": "ja"})
    wrong = {"BCPCTL_PASSWORD": "not the passphrase"}
    found = {}
    for name, (args, values) in _failures(tmp_path).items():
        extra = wrong if name == "wrong password" else {}
        english = cli(*args, env={**english_env, **extra})
        japanese = cli(*args, env={**japanese_env, **extra})
        assert english.returncode == japanese.returncode != 0, (name, english.stderr, japanese.stderr)
        assert english_words(english.stderr, *values), (name, english.stderr)
        line = japanese.stderr.removeprefix("bcpctl: error: ")
        found[name] = english_words(line, *values)
    assert found == {name: [] for name in found}
    checked = cli("check", "--repo", str(tmp_path / "repo"), env=japanese_env)
    assert checked.returncode == 0 and english_words(checked.stdout) == [], checked.stdout
    (tmp_path / "repo" / "keys" / "planted").write_text("{")
    planted = cli("snapshots", "--repo", str(tmp_path / "repo"), env={**japanese_env, **wrong})
    assert planted.returncode == 3 and "keys/" in planted.stderr, planted.stderr
    assert english_words(planted.stderr.removeprefix("bcpctl: error: ")) == [], planted.stderr


def _english_value(value: ast.expr) -> bool:
    """An English text put into a template as it is: a literal with words (names of files and
    entries aside), an f-string with words around its values, a ``strerror`` (the OS's words), or
    either side of ``or`` / ``if … else``."""
    if isinstance(value, ast.Constant):
        # a file or entry name (``pg_tblspc/``, ``tablespace_map``) is verbatim, not words
        words = re.sub(r"\S*[/_.]\S*", " ", value.value) if isinstance(value.value, str) else ""
        return bool(re.search(r"[A-Za-z]{2,}", words))
    if isinstance(value, ast.JoinedStr):
        return any(_english_value(part) for part in value.values if isinstance(part, ast.Constant))
    if isinstance(value, ast.Attribute):
        return value.attr == "strerror"
    if isinstance(value, ast.BoolOp):
        return any(_english_value(v) for v in value.values)
    if isinstance(value, ast.IfExp):
        return _english_value(value.body) or _english_value(value.orelse)
    return False


def test_no_template_is_filled_with_english_words() -> None:
    """The words a template shows are the template's (translated) or a Message's/Reason's: a new
    ``reason="not running"``, ``… or "none"`` or ``strerror=exc.strerror`` fails here."""
    root = Path(__file__).resolve().parents[2]
    found = []
    for package in ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and node.args and isinstance(marked := node.args[0], ast.Call)):
                    continue
                if not (isinstance(marked.func, ast.Name) and marked.func.id == "N_"):
                    continue
                found += [
                    f"{path.relative_to(root)}:{node.lineno}: {k.arg}={ast.unparse(k.value)}"
                    for k in node.keywords
                    if _english_value(k.value)
                ]
    assert not found, "pass Message(N_('…')) or dc.errors.os_reason(exc):\n" + "\n".join(found)


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.sampled_from(sorted(OS_REASONS)))
def test_a_reason_survives_a_forked_worker(code: int) -> None:
    """Restores and backups hand results over a pipe: the template must cross it with the words."""
    reason = os_reason(OSError(code, os.strerror(code)))
    back = pickle.loads(pickle.dumps(reason))
    assert (back, type(back), back.template) == (reason, type(reason), reason.template)  # type: ignore[attr-defined]
