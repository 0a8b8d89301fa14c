"""A real ``bcpctl serve`` process for tests: start, poll its HTTP endpoints, signal it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.servers.ports import free_port


class ServeProcess:
    def __init__(
        self, config: Path, log: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.log = log
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(log, "ab") as stderr:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bcpctl.cli",
                    "serve",
                    "--json",
                    "--config",
                    str(config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    *args,
                ],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=full_env,
            )

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{self.target}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def readyz(self) -> dict[str, Any] | None:
        try:
            _status, body = self.get("/readyz")
        except OSError:
            return None
        return json.loads(body)

    def wait_role(self, role: str, timeout: float = 30.0) -> float:
        """Wait until /readyz reports ``role``; returns the monotonic time it was first seen."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            state = self.readyz()
            if state and state.get("role") == role:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"serve never became {role} (last: {state}): {self.log_text()[-2000:]}")
            time.sleep(0.05)

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200
        return body.decode()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 60.0, signum: int = signal.SIGTERM) -> tuple[int, dict[str, Any] | None]:
        """Signal (SIGTERM) and wait; returns the exit code and the JSON summary printed on stdout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        out, _ = self.proc.communicate(timeout=timeout)
        summary = json.loads(out) if out.strip() else None
        return self.proc.returncode, summary

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
