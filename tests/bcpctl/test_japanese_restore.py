"""A restore that cannot write everything speaks to a Japanese operator in Japanese.

Why each entry failed, was skipped, or lost its owner travels from the writer (often a forked
process, through a pipe) to the CLI as a :class:`~dc.errors.Message` or an OS
:class:`~dc.errors.Reason`; the line a Japanese operator reads holds no English words but the
paths, while the English line keeps its words (tests/backup/test_restore_damage.py).
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import re
import socket
import stat
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from backup.restoredirs import NotPlaced
from backup.restorefiles import why
from backup.restoremeta import _note, apply_metadata
from backup.restorer import RestoreResult, _failure_message
from bcpctl import i18n
from dc.errors import N_, OS_REASONS, Message, os_reason
from tests.backup.conftest import make_tree
from tests.bcpctl.test_i18n import _env
from tests.bcpctl.test_japanese_fragments import english_words
from tests.conftest import Cli

#: byte units the size is shown in, read as they are
_UNITS = ("KiB", "MiB", "GiB", "TiB")
#: how a restore names an entry: its path quoted, then why
_NAMED = re.compile(r"'[^']*': ")


def _files(count: int) -> dict[str, bytes | str]:
    rng = random.Random(19)
    return {f"d{i % 4}/f{i:03d}.bin": rng.randbytes(rng.randrange(1, 300_000)) for i in range(count)}


def _paths(line: str) -> list[str]:
    return re.findall(r"'([^']*)'", line)


def test_a_damaged_restore_reads_japanese(cli: Cli, tmp_path: Path) -> None:
    """Forked writers, a missing pack: the same exit code and the same entries named in both
    languages, English reasons in the English line and none in the Japanese one."""
    src = make_tree(tmp_path / "src", _files(30))
    repo = tmp_path / "repo"
    assert cli("repo", "init", "--repo", str(repo)).returncode == 0
    assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}").returncode == 0
    max(sorted((repo / "data").rglob("*/*")), key=lambda p: p.stat().st_size).unlink()
    lines = {}
    for lang in ("en", "ja"):
        env = _env({"BCPCTL_LANG": lang} if lang == "ja" else {})
        done = cli("restore", "latest", "--repo", str(repo), "--target", str(tmp_path / lang), env=env, timeout=120)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        lines[lang] = done.stderr.removeprefix("bcpctl: error: ")
    english, japanese = lines["en"], lines["ja"]
    assert re.match(r"snapshot \w{8}: \d+ entries not restored: '", english), english
    assert english.rstrip().endswith("more; everything else is restored and verified"), english
    assert len(_NAMED.findall(english)) == 5 and english_words(english, *_paths(english))
    assert len(_paths(japanese)) == len(_paths(english)) == 5  # which five depends on the writers
    ids = re.findall(r"[0-9a-f]{16,}", japanese)  # the blob's id, read as it is
    assert english_words(japanese, *_paths(japanese), *ids) == [], japanese


def test_a_restore_with_a_socket_reads_japanese(cli: Cli, tmp_path: Path) -> None:
    """The line a restore ends with, and the entries it did not recreate."""
    src = make_tree(tmp_path / "src", {"a/file": b"x" * 3000})
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "a" / "sock"))
        repo = tmp_path / "repo"
        assert cli("repo", "init", "--repo", str(repo)).returncode == 0
        assert cli("backup", "run", "--repo", str(repo), "--source", f"path:{src}").returncode == 0
    done = {}
    for lang in ("en", "ja"):
        env = _env({"BCPCTL_LANG": lang} if lang == "ja" else {})
        done[lang] = cli("restore", "latest", "--repo", str(repo), "--target", str(tmp_path / lang), env=env)
        assert done[lang].returncode == 0, done[lang].stderr
    english, japanese = done["en"], done["ja"]
    assert "warning: 1 entries not recreated: 'a/sock': a socket, not recreated" in english.stderr
    assert re.search(r"restored snapshot \w{8} to .*: 1 files, 2\.9 KiB in \d+\.\ds, verified", english.stdout)
    for stream in (japanese.stdout, japanese.stderr):
        ids = re.findall(r"\b[0-9a-f]{8}\b", stream)
        assert english_words(stream, str(tmp_path / "ja"), "a/sock", *ids, *_UNITS) == [], stream


_ERRNOS = st.sampled_from(sorted(OS_REASONS))
_PATHS = st.sampled_from(["d/f", "データ/ファイル b", "a'b"])


def _japanese(message: Message) -> str:
    return i18n.error_message(message, "ja")


@settings(max_examples=60, derandomize=True, deadline=None)
@given(_ERRNOS, st.sampled_from([0, stat.S_ISUID, stat.S_ISGID, stat.S_ISUID | stat.S_ISGID]))
def test_an_owner_not_kept_reads_japanese(code: int, dropped: int) -> None:
    """Why the recorded owner or setuid/setgid bits were not kept (chown refused as root)."""
    entry = {"path": "p", "uid": 1234, "gid": 56}
    note = _note(entry, os_reason(OSError(code, os.strerror(code))), dropped)
    assert note is not None and os.strerror(code) in note
    back = pickle.loads(pickle.dumps(note))
    assert english_words(_japanese(back), "1234:56", "setuid/setgid", "setuid", "setgid") == [], _japanese(back)


def test_a_setuid_bit_cleared_reads_japanese(tmp_path: Path) -> None:
    """The real path: an entry owned by someone else, restored without chown."""
    path = tmp_path / "f"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        note = apply_metadata(fd, {"path": "f", "mode": 0o4755, "uid": 4321, "gid": os.getgid()}, as_root=False)
    finally:
        os.close(fd)
    assert note == "setuid bit cleared: the restored entry is not owned by 4321:" + str(os.getgid())
    assert english_words(_japanese(pickle.loads(pickle.dumps(note))), f"4321:{os.getgid()}", "setuid") == []


@settings(max_examples=60, derandomize=True, deadline=None)
@given(_ERRNOS, _PATHS, st.integers(1, 9))
def test_failure_reasons_read_japanese_after_a_pipe(code: int, path: str, count: int) -> None:
    """An OS error and the restore's own reasons, as a forked writer hands them over, in the
    error line a Japanese operator reads; the English line as it always was."""
    reasons = [why(OSError(code, os.strerror(code))), why(NotPlaced(Message(N_("the snapshot's entry is malformed"))))]
    result = RestoreResult("0" * 64, "/t")
    for i in range(count):
        result.fail(f"{path}{i}", pickle.loads(pickle.dumps(reasons[i % 2])))
    message = _failure_message(SimpleNamespace(short_id="abababab"), result)  # type: ignore[arg-type]
    shown = "; ".join(f"{f'{path}{i}'!r}: {reasons[i % 2]}" for i in range(min(count, 5)))
    assert shown in message and message.startswith("snapshot abababab: ")
    paths = [repr(f"{path}{i}") for i in range(count)]
    assert english_words(_japanese(message), *paths) == [], _japanese(message)


def test_an_unknown_errno_keeps_its_code() -> None:
    assert why(OSError(errno.ENOLINK, os.strerror(errno.ENOLINK))) == os.strerror(errno.ENOLINK)
    assert why(OSError("no errno")) == "OSError"
