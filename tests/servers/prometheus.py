"""A private Prometheus server (Debian ``prometheus``) on 127.0.0.1, scraping given targets.

Its configuration, TSDB and log live in a temporary directory; scrape and rule evaluation
run every second so a test sees values within a few seconds. Queries go through the real
HTTP API (``/api/v1/query``, ``/api/v1/targets``, ``/api/v1/rules``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.servers.ports import free_port, wait_for_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


@dataclass
class PrometheusServer:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as response:
            doc = json.load(response)
        if doc.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {doc}")
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result for {expr!r} after {timeout}s (log: {self.log_tail()})")
            time.sleep(0.5)

    def log_tail(self) -> str:
        try:
            return (self.root / "prometheus.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_prometheus(targets: list[str], rule_files: tuple[Path, ...] = (), interval: str = "1s") -> PrometheusServer:
    """Start Prometheus scraping ``targets`` (``HOST:PORT`` on loopback) with ``rule_files``."""
    if not os.path.exists(PROMETHEUS):
        raise RuntimeError("prometheus not found: run 'make test' (installs the prometheus package)")
    for target in targets:
        if not target.startswith(("127.", "[::1]", "localhost:")):
            raise ValueError(f"test Prometheus scrapes loopback only, not {target}")
    root = Path(tempfile.mkdtemp(prefix="bcpctl-prometheus-"))
    rules = []
    for index, path in enumerate(rule_files):
        copy = root / f"rules-{index}-{path.name}"
        shutil.copy(path, copy)
        rules.append(str(copy))
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": rules,
        "scrape_configs": [{"job_name": "bcpctl", "static_configs": [{"targets": targets}]}],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(root / "prometheus.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    log.close()
    server = PrometheusServer(root, port, proc)
    try:
        wait_for_port(port, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not become ready: {server.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise
    return server
