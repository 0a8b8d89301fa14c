"""A report's printable PDF, printed from its HTML by headless Chromium (:mod:`dc.printing`).

Printing the same HTML keeps one layout for the screen, the phone and paper (its ``@media
print`` rules and the 確認者・決裁 box), and no PDF is drawn by hand.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from dc.errors import N_, ProblemFound, UsageError
from dc.printing import CHROMIUM_ENV, PrintUnavailable, chromium, print_to_pdf

__all__ = ["CHROMIUM_ENV", "print_pdf"]


def print_pdf(html: str, out: Path) -> Path:
    """Print ``html`` to ``out`` (A4, the page's own print styles); the file appears only when complete.

    No Chromium is a usage problem (exit 2: install it or ask for HTML); a Chromium that fails is exit 1.
    """
    if chromium() is None:
        raise UsageError(
            N_(
                "no Chromium to print the PDF with (looked for ${CHROMIUM_ENV} and chromium on PATH): "
                "install Debian's chromium package or use --format html"
            ),
            CHROMIUM_ENV=CHROMIUM_ENV,
        )
    out = out.resolve()
    with tempfile.TemporaryDirectory(prefix="bcpctl-pdf-") as tmp:
        page, printed = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        try:
            print_to_pdf(page, printed)
        except PrintUnavailable as exc:
            raise ProblemFound(exc.template, **exc.params) from None
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(printed), out)
    return out
