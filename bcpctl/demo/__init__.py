"""``bcpctl demo``: the continuity story end to end on local directories and SQLite."""

from bcpctl.demo.consortium import demo_config
from bcpctl.demo.story import DemoSummary, default_workdir, run_demo

__all__ = ["DemoSummary", "default_workdir", "demo_config", "run_demo"]
