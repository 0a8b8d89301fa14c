"""HTML to PDF with a headless Chromium's own print engine (``--print-to-pdf``), never a hand-drawn PDF.

The pages bcpctl prints (escrow sheets, reports) are HTML that a browser lays out, Japanese
fonts and all; Chromium prints them exactly as a person would from the browser. Chromium
runs with a throwaway profile, no extensions, no background networking and a proxy that
points at a closed loopback port, so printing a local file cannot send anything off the
machine. A machine without Chromium still gets the HTML: :class:`PrintUnavailable` says so
and the caller reports it instead of failing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dc.errors import N_, BcpError, library_reason

#: names another binary to print with
CHROMIUM_ENV = "BCPCTL_CHROMIUM"
#: Where to look, in order, without ``$BCPCTL_CHROMIUM``.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 120
_ARGS = (
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--proxy-server=http://127.0.0.1:9",  # the discard port: nothing leaves the machine
    "--no-pdf-header-footer",
)


class PrintUnavailable(BcpError):
    """No Chromium to print with, or it failed: the HTML stands on its own."""


def chromium() -> str | None:
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return named if shutil.which(named) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_to_pdf(html: Path, pdf: Path) -> None:
    """Print the local file ``html`` to ``pdf`` (created 0600, never over an existing file)."""
    binary = chromium()
    if binary is None:
        raise PrintUnavailable(N_("no Chromium found to print PDFs (install chromium or set BCPCTL_CHROMIUM)"))
    if pdf.exists():
        raise PrintUnavailable(N_("{pdf} already exists"), pdf=pdf)
    with tempfile.TemporaryDirectory(prefix="bcpctl-print-") as work:
        target = Path(work) / "out.pdf"
        args = [binary, *_ARGS, f"--user-data-dir={work}/profile", f"--print-to-pdf={target}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        try:
            done = subprocess.run(
                [*args, html.resolve().as_uri()],
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                env={**os.environ, "HOME": work},
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PrintUnavailable(
                N_("Chromium could not print {name} ({exc})"), name=html.name, exc=library_reason(exc)
            ) from None
        if done.returncode != 0 or not target.is_file() or not target.read_bytes().startswith(b"%PDF-"):
            last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise PrintUnavailable(
                N_("Chromium could not print {name} (exit {returncode}): {last}"),
                name=html.name,
                returncode=done.returncode,
                last=last,
            )
        fd = os.open(pdf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(target.read_bytes())
