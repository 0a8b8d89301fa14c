"""Restore verification: every kind of difference between a restored tree and the manifest is named."""

from __future__ import annotations

from pathlib import Path

from bench.manifest import differences, manifest


def _tree(root: Path) -> Path:
    (root / "sql" / "08542_goka").mkdir(parents=True)
    (root / "sql" / "08542_goka" / "juki.sql").write_bytes(b"COPY public.jumin FROM stdin;\n1\t\xe4\xbd\x90\n\\.\n")
    (root / "files").mkdir()
    (root / "files" / "通知.txt").write_text("令和6年度\n")
    return root


def test_identical_tree_has_no_differences(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    assert differences(manifest(src), _tree(tmp_path / "copy")) == []


def test_flipped_byte_missing_and_extra_files_are_named(tmp_path: Path) -> None:
    expected = manifest(_tree(tmp_path / "src"))
    got = _tree(tmp_path / "got")
    dump = got / "sql" / "08542_goka" / "juki.sql"
    data = bytearray(dump.read_bytes())
    data[5] ^= 0x01
    dump.write_bytes(bytes(data))
    (got / "files" / "通知.txt").unlink()
    (got / "files" / "extra.txt").write_text("x")
    assert differences(expected, got) == [
        "missing files/通知.txt",
        "unexpected files/extra.txt",
        "content differs: sql/08542_goka/juki.sql",
    ]


def test_absent_restore_directory_is_a_difference(tmp_path: Path) -> None:
    assert differences({"a": "b"}, tmp_path / "nothing") == [f"restored tree {tmp_path / 'nothing'} does not exist"]
