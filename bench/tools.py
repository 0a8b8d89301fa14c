"""The three backup tools as the benchmark drives them: command lines, environment, repository.

Fair settings (issue 2, "Benchmark"): restic with its default ``auto`` compression on a
version-2 repository, borg with ``--compression zstd,3`` and ``repokey`` encryption, bcpctl with
its defaults. Passphrases travel in environment variables only; every tool gets its own
private cache directory inside the run directory so no earlier run warms it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_PASSPHRASE = "bench-only passphrase, not a secret"


@dataclass
class Tool:
    """One tool's repository under ``workdir``; subclasses give the command lines."""

    workdir: Path
    name: str = ""
    archives: list[str] = field(default_factory=list)

    @property
    def repo(self) -> Path:
        return self.workdir / "repo"

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir / "home"), "LANG": "C.UTF-8"}

    def executable(self) -> str:
        raise NotImplementedError

    def installed(self) -> list[Path]:
        """The files the tool runs from, read into the page cache before every timed step
        (the benchmark drops the cache between repetitions, where it may)."""
        return [Path(self.executable()).resolve()]

    def version(self) -> str:
        raise NotImplementedError

    def init(self) -> list[str]:
        raise NotImplementedError

    def backup(self, source: Path) -> list[str]:
        raise NotImplementedError

    def restore(self, target: Path) -> tuple[list[str], Path | None]:
        """The restore command and the directory to run it in."""
        raise NotImplementedError

    def restored_root(self, target: Path, source: Path) -> Path:
        """Where the source tree's top lands inside ``target``."""
        return target / str(source).lstrip("/")

    def run(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=self.env(), cwd=cwd, capture_output=True, text=True, check=False)


class Bcpctl(Tool):
    _loaded: list[Path] | None = None

    def executable(self) -> str:
        # the venv's bcpctl, beside the interpreter running the benchmark (make bench uses .venv/bin/python)
        beside = Path(sys.executable).parent / "bcpctl"
        return str(beside) if beside.exists() else shutil.which("bcpctl") or "bcpctl"

    def installed(self) -> list[Path]:
        """Every file a backup or restore loads (the whole virtualenv is 1.2 GB, mostly unused)."""
        if self._loaded is None:
            where = self.run([sys.executable, "-c", _LOADED_FILES])
            self._loaded = [Path(line) for line in where.stdout.splitlines() if line]
        return [*super().installed(), *self._loaded]

    def env(self) -> dict[str, str]:
        home = self.workdir / "home"
        return {
            **super().env(),
            "BCPCTL_PASSWORD": BENCH_PASSPHRASE,
            "BCPCTL_CACHE_DIR": str(home / "cache"),
            "BCPCTL_CONTROL_DB": f"sqlite:///{home / 'control.db'}",
            "XDG_STATE_HOME": str(home / "state"),
            # the code of the checkout the benchmark runs from, not whatever the venv installed
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        }

    def version(self) -> str:
        return self.run([self.executable(), "--version"]).stdout.strip()

    def init(self) -> list[str]:
        return [self.executable(), "repo", "init", "--repo", str(self.repo)]

    def backup(self, source: Path) -> list[str]:
        return [
            self.executable(),
            "--json",
            "backup",
            "run",
            "--repo",
            str(self.repo),
            "--source",
            f"path:{source}",
            "--system",
            "bench",
        ]

    def restore(self, target: Path) -> tuple[list[str], Path | None]:
        return [self.executable(), "restore", "latest:bench", "--repo", str(self.repo), "--target", str(target)], None

    def restored_root(self, target: Path, source: Path) -> Path:
        return target


class Restic(Tool):
    def executable(self) -> str:
        return shutil.which("restic") or "/usr/bin/restic"

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "RESTIC_PASSWORD": BENCH_PASSPHRASE,
            "RESTIC_REPOSITORY": str(self.repo),
            "RESTIC_CACHE_DIR": str(self.workdir / "home" / "cache"),
        }

    def version(self) -> str:
        return self.run([self.executable(), "version"]).stdout.strip()

    def init(self) -> list[str]:
        return [self.executable(), "init", "--repository-version", "2"]

    def backup(self, source: Path) -> list[str]:
        return [self.executable(), "backup", "--json", "--compression", "auto", "--host", "bench", str(source)]

    def restore(self, target: Path) -> tuple[list[str], Path | None]:
        return [self.executable(), "restore", "latest", "--host", "bench", "--target", str(target)], None


class Borg(Tool):
    def executable(self) -> str:
        return shutil.which("borg") or "/usr/bin/borg"

    def installed(self) -> list[Path]:
        """The script, its interpreter's standard library and the borg package."""
        script = Path(self.executable()).resolve()
        with script.open("rb") as f:
            shebang = f.readline().decode(errors="replace")
        if not shebang.startswith("#!"):
            return [script]
        interpreter = shebang[2:].split()
        query = "import borg, sysconfig; print(borg.__path__[0]); print(sysconfig.get_paths()['stdlib'])"
        where = self.run([*interpreter, "-c", query])
        return [script, *(Path(line) for line in where.stdout.split())]

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "BORG_PASSPHRASE": BENCH_PASSPHRASE,
            "BORG_BASE_DIR": str(self.workdir / "home"),
        }

    def version(self) -> str:
        return self.run([self.executable(), "--version"]).stdout.strip()

    def init(self) -> list[str]:
        return [self.executable(), "init", "--encryption=repokey", str(self.repo)]

    def backup(self, source: Path) -> list[str]:
        name = f"bench-{len(self.archives) + 1}"
        self.archives.append(name)
        return [self.executable(), "create", "--compression", "zstd,3", f"{self.repo}::{name}", str(source)]

    def restore(self, target: Path) -> tuple[list[str], Path | None]:
        return [self.executable(), "extract", f"{self.repo}::{self.archives[-1]}"], target


#: prints the files of the modules and shared objects that bcpctl's backup and restore load
_LOADED_FILES = """
import sys
import bcpctl.cli, bcpctl.commands.backup, bcpctl.commands.restore, bcpctl.session
import backup.run, backup.restorer, backup.restoretarget
modules = list(sys.modules.values())
files = {f for m in modules for f in (getattr(m, "__file__", None), getattr(m, "__cached__", None)) if f}
with open("/proc/self/maps") as maps:
    files |= {line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line}
print("\\n".join(sorted(f for f in files if f.startswith("/"))))
"""

TOOLS: dict[str, type[Tool]] = {"bcpctl": Bcpctl, "restic": Restic, "borg": Borg}


def make_tool(name: str, workdir: Path) -> Tool:
    tool = TOOLS[name](workdir=workdir, name=name)
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    return tool
