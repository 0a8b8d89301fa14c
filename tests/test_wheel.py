"""``pip install .`` gives a working bcpctl: the wheel, installed in a new venv, away from the checkout.

A checkout hides missing package data: code that finds ``playbooks/`` or ``examples/`` beside
its own source works there and fails in an installed copy. So the wheel is built from a copy
of the source tree, installed into a venv outside the checkout, and its ``bcpctl`` runs the
demo, serves the web pages and runs a playbook against a real sshd, from a directory outside
the checkout with no PYTHONPATH.

The venv reuses the dependencies already installed for the tests (a ``.pth`` line naming their
site-packages, which adds the directory only: the editable install's finder there is not
run) so nothing is downloaded; the wheel itself is installed with ``--no-deps``. The build
runs without isolation, with the setuptools of the dev extras.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dc.conftest import single_host_config
from tests.servers.ports import free_port
from tests.servers.sshd import cleanup, start_sshd

ROOT = Path(__file__).resolve().parents[1]
#: top-level folders with an ``__init__.py`` that are not shipped
NOT_SHIPPED = {"tests", "bench"}
#: data folders of the tree -> where the wheel carries them (dc/shipped.py)
SHIPPED_FOLDERS = {"playbooks": "dc/playbooks", "examples": "bcpctl/examples"}
#: single files of the tree -> where the wheel carries them (the runbooks bcpctl serve renders)
SHIPPED_FILES = {"docs/runbook.md": "bcpctl/docs/runbook.md", "docs/runbook.ja.md": "bcpctl/docs/runbook.ja.md"}
#: top-level packages whose ``__file__`` must lie in the venv
PACKAGES = ("dc", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    source: Path
    wheel: Path
    venv: Path
    env: dict[str, str]

    @property
    def bcpctl(self) -> str:
        return str(self.venv / "bin" / "bcpctl")

    def run(self, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)


def _copy_source(dest: Path) -> None:
    """The files a clean clone would have (tracked or new, not ignored): no build/ or caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in {n for n in listed.stdout.decode().split("\0") if n}:
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not part of it
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _dependency_dirs() -> list[str]:
    """The site-packages this interpreter imports the dependencies from."""
    return [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    source, dist, venv = base / "source", base / "dist", base / "venv"
    _copy_source(source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"building the wheel failed (dev extras: setuptools>=77):\n{build.stderr[-3000:]}"
    (wheel,) = dist.glob("bcpctl-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # Only after the install: pip must never see (or offer to replace) the editable bcpctl there.
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "bcpctl-test-dependencies.pth").write_text("".join(f"{d}\n" for d in _dependency_dirs()))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BCPCTL_PLAYBOOKS", "VIRTUAL_ENV")}
    # Module-scoped, so made before the per-test isolation: state of its own, not the user's
    # ~/.local/state (whose control database another bcpctl version may have created).
    env.pop("BCPCTL_CONTROL_DB", None)
    env["XDG_STATE_HOME"] = str(base / "state")
    # ansible-playbook is a script of the dependencies' environment, not of this venv.
    env["PATH"] = os.pathsep.join([str(venv / "bin"), str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return Installed(source, wheel, venv, env)


def test_the_wheel_carries_every_package_and_data_file_of_the_tree(installed: Installed) -> None:
    source = installed.source
    packages = sorted(p.parent.name for p in source.glob("*/__init__.py") if p.parent.name not in NOT_SHIPPED)
    assert set(PACKAGES) <= set(packages)
    expected = {
        str(f.relative_to(source)) for package in packages for f in (source / package).rglob("*") if f.is_file()
    }
    expected |= set(SHIPPED_FILES.values())
    for folder, inside in SHIPPED_FOLDERS.items():
        expected |= {f"{inside}/{f.relative_to(source / folder)}" for f in (source / folder).rglob("*") if f.is_file()}
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = {n for n in wheel.namelist() if ".dist-info/" not in n}
    assert sorted(expected - names) == [], "missing from the wheel"
    assert sorted(names - expected) == [], "in the wheel but not in the tree"
    assert all(f"{package}/py.typed" in names for package in PACKAGES)


def test_the_wheel_is_pure_python_so_installing_needs_no_compiler(installed: Installed) -> None:
    # hashing is hashlib's (OpenSSL): nothing of ours is compiled, so one wheel fits every host
    assert installed.wheel.name.endswith("-py3-none-any.whl"), installed.wheel.name


def test_installed_bcpctl_is_the_wheel_in_the_venv_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    code = (
        "import importlib, json\n"
        "from dc.ansible import playbooks_dir\n"
        "from bcpctl.demo.consortium import EXAMPLE\n"
        f"paths = [importlib.import_module(p).__file__ for p in {PACKAGES!r}]\n"
        "print(json.dumps([*paths, str(playbooks_dir()), str(EXAMPLE)]))\n"
    )
    proc = installed.run(str(installed.venv / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    venv = installed.venv.resolve()
    for path in map(Path, json.loads(proc.stdout)):
        assert path.resolve().is_relative_to(venv), path
        assert not path.resolve().is_relative_to(ROOT), path


@pytest.fixture(scope="module")
def demo(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    cwd = tmp_path_factory.mktemp("demo-cwd")
    proc = installed.run(installed.bcpctl, "demo", "--scale", "0.01", "--json", cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_installed_bcpctl_speaks_japanese_from_the_shipped_catalog(installed: Installed, tmp_path: Path) -> None:
    """The compiled .mo travels in the wheel: a ja_JP locale gets Japanese help and errors, same exit codes."""
    env = {**installed.env, "LANG": "ja_JP.UTF-8", "LC_ALL": "", "LANGUAGE": "", "BCPCTL_LANG": ""}
    shown = subprocess.run([installed.bcpctl, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and "使い方" in shown.stdout and "コマンド / Commands" in shown.stdout
    wrong = subprocess.run([installed.bcpctl, "no-such"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.startswith("bcpctl: error: コマンド 'no-such' はありません")


def test_demo_runs_from_the_wheel(demo: dict[str, object]) -> None:
    assert demo["ok"] is True
    steps = demo["steps"]
    assert isinstance(steps, list) and steps and all(step["ok"] for step in steps)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return response.status, response.read()


@pytest.fixture
def web(installed: Installed, demo: dict[str, object], tmp_path: Path) -> Iterator[str]:
    """``bcpctl web`` of the wheel serving the demo's consortium; yields its base URL."""
    port = free_port()
    config = Path(str(demo["workdir"])) / "bcpctl.yaml"
    proc = subprocess.Popen(
        [installed.bcpctl, "web", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env={**installed.env, "BCPCTL_SITE": "offsite"},  # the demo ends failed over: the state lives there
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{url}/login")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"bcpctl web did not serve: {proc.communicate()[1]!r}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_web_serves_pages_and_static_files_from_the_wheel(web: str, installed: Installed) -> None:
    status, page = _get(f"{web}/login")
    assert status == 200 and b'href="/static/style.css"' in page
    status, css = _get(f"{web}/static/style.css")
    assert status == 200 and css == (installed.source / "bcpctl/web/static/style.css").read_bytes()
    status, page = _get(f"{web}/portal/open")  # the in-browser opener and its vendored age implementation
    assert status == 200 and b'src="/static/age-encryption.js"' in page
    for name in ("age-encryption.js", "open-bundle.js"):
        status, script = _get(f"{web}/static/{name}")
        assert status == 200 and script == (installed.source / f"bcpctl/web/static/{name}").read_bytes()


@pytest.mark.sshd
@pytest.mark.ansible
def test_dc_run_health_check_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "sshd", address="127.0.0.42")
    try:
        config = single_host_config(
            tmp_path, server, bcp_root=str(tmp_path), ansible_python_interpreter="/usr/bin/python3"
        )
        cwd = tmp_path / "elsewhere"
        cwd.mkdir()
        created = installed.run(installed.bcpctl, "db", "upgrade", "--config", str(config), cwd=cwd)
        assert created.returncode == 0, created.stderr  # the installation's first step (README)
        args = ("dc", "run", "health", "--check", "--config", str(config), "--json")
        proc = installed.run(installed.bcpctl, *args, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["ok"] is True and [h["status"] for h in result["hosts"]] == ["ok"]
        assert result["hosts"][0]["data"]["disk_path"] == str(tmp_path)
    finally:
        cleanup(server)
