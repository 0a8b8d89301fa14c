"""The comparison as rich tables on the terminal, Markdown for the README, and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.results import MIB, PHASES, RunResult, ToolResult
from bench.targets import Verdict

_PHASE_LABEL = {"full": "full backup", "incremental": "incremental", "restore": "restore"}


def _mib(n: float) -> str:
    return "—" if math.isnan(n) else f"{n / MIB:,.1f} MiB"


def measurement_rows(run: RunResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the measurements table (metrics down, tools across)."""
    tools = list(run.tools.values())
    header = ["metric", *(f"{t.tool}" for t in tools)]
    rows: list[list[str]] = []

    def phase_cell(t: ToolResult, phase: str, fmt: str) -> str:
        p = t.phases.get(phase)
        if p is None:
            return "—"
        if not p.ok:
            return "FAILED"
        return fmt.format(p=p, rss=p.peak_rss / MIB)

    for phase in PHASES:
        label = _PHASE_LABEL[phase]
        rows.append([f"{label}: time", *(phase_cell(t, phase, "{p.seconds:.1f} s") for t in tools)])
        rows.append([f"{label}: MB/s", *(phase_cell(t, phase, "{p.mb_per_s:.0f}") for t in tools)])
        rows.append([f"{label}: CPU time", *(phase_cell(t, phase, "{p.cpu_seconds:.1f} s") for t in tools)])
        rows.append([f"{label}: peak RSS", *(phase_cell(t, phase, "{rss:.0f} MiB") for t in tools)])
    rows.append(["repository after full", *(_mib(t.repo_bytes_full) for t in tools)])
    rows.append(["added by incremental", *(_mib(t.incremental_added) for t in tools)])
    rows.append(["peak RSS (any phase)", *(f"{t.peak_rss / MIB:.0f} MiB" for t in tools)])
    naive = [max((p.peak_rss_tree_naive for p in t.phases.values()), default=0) for t in tools]
    rows.append(["peak VmRSS summed over processes", *(f"{n / MIB:.0f} MiB" for n in naive)])
    rows.append(["restore verified", *("yes" if t.ok else "NO: " + "; ".join(t.restore_problems)[:80] for t in tools)])
    return header, rows


def verdict_rows(verdicts: list[Verdict]) -> tuple[list[str], list[list[str]]]:
    header = ["target (bcpctl vs restic)", "bcpctl", "restic", "ratio", "goal", "result"]
    rows = []
    for v in verdicts:
        if "RSS" in v.name or "size" in v.name or "bytes" in v.name:
            ours, theirs = _mib(v.ours), _mib(v.theirs)
        else:
            ours, theirs = f"{v.ours:.1f} s", f"{v.theirs:.1f} s"
        rows.append(
            [
                v.name,
                ours,
                theirs,
                f"{v.ratio:.2f}x",
                v.goal,
                ("PASS" if v.passed else "FAIL") + (f" ({v.note})" if v.note else ""),
            ]
        )
    return header, rows


def rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        styled = [
            f"[green]{c}[/]" if c.startswith("PASS") else f"[red]{c}[/]" if c.startswith(("FAIL", "NO")) else c
            for c in row
        ]
        table.add_row(*styled)
    return table


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scale_rows(scale: dict[str, object]) -> tuple[list[str], list[list[str]]]:
    k = scale["factor"]
    header = ["tool", "1x full: peak RSS", f"{k}x full: peak RSS", f"1x into the {k}x repo: peak RSS", f"{k}x / 1x"]
    rows = []
    for tool, r in scale["tools"].items():  # type: ignore[union-attr]
        one, big, into = r["1x"]["peak_rss"], r["big"]["peak_rss"], r["1x_into_big"]["peak_rss"]
        rows.append([tool, _mib(one), _mib(big), _mib(into), f"{big / one:.2f}x" if one else "—"])
    return header, rows


def render_scale(scale: dict[str, object], console: Console) -> str:
    """Print the memory-growth table; return it as Markdown."""
    header, rows = scale_rows(scale)
    console.print(rich_table("memory as the repository grows (--scale-memory)", header, rows))
    return markdown_table(header, rows)


def render(run: RunResult, verdicts: list[Verdict], console: Console | None = None) -> str:
    """Print the tables; return the same as Markdown."""
    console = console or Console()
    title = (
        f"{run.shape} shape: {' vs '.join(run.tools)} — {run.dataset_bytes / MIB:,.0f} MiB, "
        f"{run.dataset_files:,} files, "
        f"seed {run.seed}, incremental after a {run.mutate_pct:g}% mutation"
    )
    m_header, m_rows = measurement_rows(run)
    v_header, v_rows = verdict_rows(verdicts)
    console.print(rich_table(title, m_header, m_rows))
    console.print(rich_table(f"targets of issue 18 ({run.shape} shape)", v_header, v_rows))
    md = [
        f"**{title}** ({run.cpu_count} CPUs, {run.started})",
        "",
        markdown_table(m_header, m_rows),
        "",
        markdown_table(v_header, v_rows),
    ]
    if run.scale_memory:
        md += ["", render_scale(run.scale_memory, console)]
    for note in run.notes:
        console.print(f"[dim]note: {note}[/]")
    md += ["", *(f"- {n}" for n in run.notes)]
    return "\n".join(md) + "\n"


def _doc(run: RunResult, verdicts: list[Verdict]) -> dict[str, object]:
    return {
        **asdict(run),
        "derived": {
            t: {"incremental_added": r.incremental_added, "peak_rss": r.peak_rss, "ok": r.ok}
            for t, r in run.tools.items()
        },
        "verdicts": [asdict(v) for v in verdicts],
    }


def write_all(runs: list[tuple[RunResult, list[Verdict], str]], out: Path, stamp: str) -> list[Path]:
    """Per shape ``results-STAMP-SHAPE.json``; ``latest.json`` (``{"shapes": {SHAPE: run}}``) and
    ``latest.md`` (every shape's tables, one after the other) in ``out``. Returns the per-shape paths."""
    paths = []
    shapes: dict[str, object] = {}
    for run, verdicts, _markdown in runs:
        doc = _doc(run, verdicts)
        shapes[run.shape] = doc
        path = out / f"results-{stamp}-{run.shape}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        paths.append(path)
    (out / "latest.json").write_text(json.dumps({"shapes": shapes}, ensure_ascii=False, indent=2, default=str))
    (out / "latest.md").write_text("\n".join(markdown for _r, _v, markdown in runs))
    return paths
