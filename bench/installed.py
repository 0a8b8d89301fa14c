"""bcpctl measured as an installation runs it: with its bytecode compiled.

``pip install`` compiles every module of a wheel it installs, so an installed ``bcpctl``
imports from ``.pyc`` files. The benchmark runs the checkout (an editable install), and where
``PYTHONDONTWRITEBYTECODE`` is set (as on this project's build machines) nothing is ever
cached: every ``bcpctl`` invocation would compile the project's ~300 modules again, ~0.2
CPU-seconds that no user pays and that restic and rclone, compiled programs, do not pay either.
"""

from __future__ import annotations

import compileall
from pathlib import Path

#: the project's packages, in layer order (pyproject's ``[tool.mypy] packages``)
PACKAGES = ("dc", "storage", "backup", "replication", "failover", "victim_support", "monitoring", "bcpctl")


def compile_packages(root: Path | None = None) -> bool:
    """Write the bytecode of every package below ``root`` (default: the checkout); ``True`` when all compiled."""
    root = root or Path(__file__).resolve().parent.parent
    return all(compileall.compile_dir(root / name, quiet=1, workers=0) for name in PACKAGES)
