"""A report's printable PDF, printed from its HTML by headless Chromium (the browser the tests drive).

Printing the same HTML keeps one layout for the screen, the phone and paper (its ``@media
print`` rules and the 確認者・決裁 box), and no PDF is drawn by hand. Chromium gets a fresh
profile in a temporary directory and no network: the report has no scripts and no external
requests, and the page is a local file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dc.errors import ProblemFound, UsageError

#: where Debian's chromium package puts it (scripts/install-system-deps.sh); ``$BCPCTL_CHROMIUM`` overrides
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ENV = "BCPCTL_CHROMIUM"
FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as a service account (or root in containers), where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
)


def chromium() -> str:
    """The Chromium binary to print with; a missing one is one clear line (exit 2)."""
    chosen = os.environ.get(CHROMIUM_ENV) or (CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"))
    if not chosen or not Path(chosen).exists():
        raise UsageError(
            f"no Chromium to print the PDF with (looked for ${CHROMIUM_ENV}, {CHROMIUM}, chromium on PATH): "
            "install Debian's chromium package or use --format html"
        )
    return chosen


def print_pdf(html: str, out: Path, *, timeout: float = 180) -> Path:
    """Print ``html`` to ``out`` (A4, the page's own print styles); the file appears only when complete."""
    binary = chromium()
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="bcpctl-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        partial = Path(tmp) / "report.pdf"
        try:
            ran = subprocess.run(
                [binary, *FLAGS, f"--user-data-dir={tmp}/profile", f"--print-to-pdf={partial}", page.as_uri()],
                capture_output=True,
                timeout=timeout,
                env={**os.environ, "HOME": tmp},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProblemFound(f"Chromium did not print the PDF within {timeout:.0f}s") from None
        if not partial.exists() or not partial.read_bytes().startswith(b"%PDF-"):
            last = (ran.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise ProblemFound(f"Chromium did not print the PDF (exit {ran.returncode}): {last}")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), out)
    return out
