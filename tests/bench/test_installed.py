"""The benchmark runs bcpctl from compiled bytecode even where nothing may write it on import."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bench.installed import PACKAGES, compile_packages


def test_every_package_gets_its_bytecode(tmp_path: Path) -> None:
    for name in PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("VALUE = 1\n")
    assert compile_packages(tmp_path)
    for name in PACKAGES:
        assert Path(importlib.util.cache_from_source(str(tmp_path / name / "__init__.py"))).is_file()


def test_the_packages_are_the_layers_of_the_project() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert f"packages = {list(PACKAGES)!r}".replace("'", '"') in text
