"""Run many ``bcpctl`` commands quickly: one process imports bcpctl once, then forks one child per command.

Each command still runs in a process of its own, through the real entry point
(:func:`bcpctl.cli.main`), with its own environment, stdout, stderr and exit status — only
Python's start-up and bcpctl's imports (about 0.2 s of CPU each) are paid once instead of
hundreds of times. The zygote is a separate, single-threaded process, so forking it is safe;
the test's threads only talk to it over a pipe.

Protocol: one JSON request per line on stdin (``args``, ``env``, and the paths for ``out``,
``err`` and ``rc``); the zygote answers with the child's ``pid`` and goes on. The child writes
its exit status to ``rc`` (atomically) when it ends; the caller waits for that file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any


def _child(request: dict[str, Any]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores it to reap; bcpctl waits for its own
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY), (1, request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        os.dup2(os.open(path, mode, 0o600), fd)
    os.dup2(os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process ends with os._exit
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(request["env"])
    code = 1
    try:
        from bcpctl.cli import main

        main(request["args"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):
                stream.flush()
        tmp = request["rc"] + ".tmp"
        Path(tmp).write_text(str(code))
        os.replace(tmp, request["rc"])
        os._exit(code)


def serve() -> None:
    import bcpctl.cli
    from bcpctl.commands import register_all

    register_all(bcpctl.cli.cli)  # every command family imported once, before any fork
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


class Zygote:
    """The test side: start the zygote, run commands through it from any thread."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._lock = threading.Lock()
        self._count = 0
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.backup.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)

    def run(self, *args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        with self._lock:
            self._count += 1
            base = self.workdir / f"cmd-{self._count}"
            request: dict[str, Any] = {
                "args": list(args),
                "env": env,
                "out": f"{base}.out",
                "err": f"{base}.err",
                "rc": f"{base}.rc",
            }
            assert self._proc.stdin and self._proc.stdout
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            pid = json.loads(self._proc.stdout.readline())["pid"]
        rc_path = Path(request["rc"])
        deadline = time.monotonic() + timeout
        while not rc_path.exists():
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(["bcpctl", *args], timeout)
            time.sleep(0.005)
        out, err = Path(request["out"]).read_text(), Path(request["err"]).read_text()
        return subprocess.CompletedProcess(["bcpctl", *args], int(rc_path.read_text()), out, err)


if __name__ == "__main__":
    serve()
