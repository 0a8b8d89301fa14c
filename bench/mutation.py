"""A day's worth of edits applied in place to a generated dataset.

What a municipal data center's nightly backup sees changed: every system's dump gets a few
tables touched — new rows appended at the table's end (届出, 収納, 給付), updates grouped in a
contiguous run (a district's 再賦課, a household's 転居), a few rows deleted — so byte offsets
shift after each edit; a few scans are replaced, a few documents edited and new ones added.
The edits are clustered, not sprinkled over every byte: a chunking backup tool should store
roughly the edited bytes plus one chunk around each cluster.

"New bytes" counts every line that the edit wrote (an updated row counts whole), every
appended line, and the full size of replaced or added files. About 60 % of the budget goes
to dumps, 30 % to scans and 10 % to small files.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.dataset import CATEGORY_DIRS, file_seed, survey
from bench.documents import appended_lines, small_file_bytes
from bench.scans import image_bytes, scan_bytes
from bench.sqldump import Section, find_sections, parse_row, render_rows
from bench.sqltables import context
from bench.vocabulary import MUNICIPALITIES

_BUDGET_SHARES = {"sql": 0.6, "scan": 0.3, "small": 0.1}
_TEXT_EXTS = (".txt", ".csv", ".md", ".html", ".yaml", ".conf")


@dataclass
class MutationReport:
    bytes_before: int
    bytes_after: int = 0
    new_bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_BUDGET_SHARES, 0))
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    files_edited: int = 0
    files_replaced: int = 0
    files_added: int = 0

    @property
    def total_new(self) -> int:
        return sum(self.new_bytes.values())


def new_line_bytes(old: bytes, new: bytes) -> int:
    """Bytes of the lines of ``new`` that ``old`` does not hold (as a multiset)."""
    remaining = Counter(old.split(b"\n"))
    total = 0
    for line in new.split(b"\n"):
        if remaining[line] > 0:
            remaining[line] -= 1
        else:
            total += len(line) + 1
    return total


def _split_budget(rng: random.Random, total: float, n: int) -> list[float]:
    weights = [rng.uniform(0.5, 1.5) for _ in range(n)]
    s = sum(weights)
    return [total * w / s for w in weights]


def _edit_section(
    body: bytes, section: Section, muni: str, rng: random.Random, budget: float, report: MutationReport
) -> tuple[bytes, int]:
    """The section's new row lines and the offset inside it of the first changed byte."""
    table = section.table
    ctx = context(muni)
    lines = body.split(b"\n")[:-1]
    n = len(lines)
    avg = max(1.0, len(body) / max(1, n))
    append_share = 0.85 if table.history else 0.35
    first_changed = n
    updated: list[tuple[int, int]] = []
    clusters = rng.choice((1, 1, 2, 3))
    for part in _split_budget(rng, budget * (1 - append_share), clusters):
        k = min(n // 2, max(1, int(part / avg)))
        if k <= 0:
            continue
        start = rng.randrange(0, n - k + 1)
        old_rows = [parse_row(table, line) for line in lines[start : start + k]]
        cols = [list(c) for c in zip(*old_rows, strict=True)]
        fresh = table.generate(ctx, rng, 0, k, 0)
        for j in table.mutable:
            cols[j] = fresh[j]
        new_lines = render_rows(table, cols).encode().split(b"\n")[:-1]
        for i, line in enumerate(new_lines):
            if lines[start + i] != line:
                report.new_bytes["sql"] += len(line) + 1
                report.rows_updated += 1
            lines[start + i] = line
        updated.append((start, start + k))
        first_changed = min(first_changed, start)
    if not table.history and n > 40 and rng.random() < 0.5:
        k = rng.randint(1, 20)
        start = rng.randrange(0, n - k)
        if all(start + k <= a or start >= b for a, b in updated):
            del lines[start : start + k]
            report.rows_deleted += k
            first_changed = min(first_changed, start)
    last_id = int(parse_row(table, lines[-1])[0]) if lines else 0
    k = max(1, math.ceil(budget * append_share / avg))
    appended = render_rows(table, table.generate(ctx, rng, last_id + 1, k, 0)).encode()
    report.rows_inserted += k
    report.new_bytes["sql"] += len(appended)
    first_changed = min(first_changed, len(lines))
    offset = sum(map(len, lines[:first_changed])) + first_changed
    return b"\n".join(lines) + b"\n" + appended, offset


def _rewrite_from(path: Path, data: bytes, offset: int) -> None:
    """Write ``data`` over the file from ``offset`` on, in place (same inode), as a DBMS export job would."""
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data[offset:])
        f.truncate()


def _mutate_dump(path: Path, rng: random.Random, budget: float, report: MutationReport) -> None:
    muni = path.parent.name.split("_", 1)[1]
    system = path.stem
    data = path.read_bytes()
    sections = find_sections(data, system)
    k = min(len(sections), rng.choice((1, 2, 2, 3)))
    chosen: list[Section] = []
    pool = list(sections)
    while len(chosen) < k:
        pick = rng.choices(pool, weights=[s.end - s.start for s in pool])[0]
        pool.remove(pick)
        chosen.append(pick)
    chosen.sort(key=lambda s: s.start)
    pieces = []
    pos = 0
    first = len(data)
    for section, part in zip(chosen, _split_budget(rng, budget, len(chosen)), strict=True):
        body, offset = _edit_section(data[section.start : section.end], section, muni, rng, part, report)
        pieces += [data[pos : section.start], body]
        first = min(first, sum(map(len, pieces[:-1])) + offset)
        pos = section.end
    pieces.append(data[pos:])
    _rewrite_from(path, b"".join(pieces), first)
    report.files_edited += 1


def _mutate_scans(
    root: Path, paths: list[Path], rng: random.Random, budget: float, seed: int, round_: int, report: MutationReport
) -> None:
    rng.shuffle(paths)
    for path in paths:
        size = path.stat().st_size
        if report.new_bytes["scan"] >= budget:
            break
        if report.new_bytes["scan"] + size / 2 > budget and report.files_replaced:
            continue
        new_size = max(1, int(size * rng.uniform(0.9, 1.1)))
        s = file_seed(seed, f"{path.relative_to(root)}@r{round_}")
        path.write_bytes(scan_bytes(s, path.name, new_size))
        report.new_bytes["scan"] += new_size
        report.files_replaced += 1


def _mutate_small(
    root: Path, paths: list[Path], rng: random.Random, budget: float, seed: int, round_: int, report: MutationReport
) -> None:
    texts = [p for p in paths if p.suffix in _TEXT_EXTS]
    rng.shuffle(texts)
    for path in texts:  # a quarter of the budget: a few dozen documents and configs edited
        if report.new_bytes["small"] >= budget / 4:
            break
        muni = _muni_of(root, path)
        s = file_seed(seed, f"{path.relative_to(root)}@r{round_}")
        old = path.read_bytes()
        if path.suffix in (".yaml", ".conf"):
            new = small_file_bytes(s, path.name, muni, len(old))
            path.write_bytes(new)
            report.new_bytes["small"] += new_line_bytes(old, new)
        else:
            extra = appended_lines(s, path.name, muni, rng.randint(2_000, 20_000))
            with path.open("ab") as f:
                f.write(extra)
            report.new_bytes["small"] += len(extra)
        report.files_edited += 1
    dirs = sorted({p.parent for p in paths})
    i = 0
    while dirs and report.new_bytes["small"] < budget:  # the rest: the day's new documents and photos
        parent = rng.choice(dirs)
        ext = rng.choice((".txt", ".csv", ".jpg", ".png", ".html"))
        path = parent / f"新規_r{round_}_{i:05d}{ext}"
        i += 1
        s = file_seed(seed, f"{path.relative_to(root)}")
        size = rng.randint(2_000, 80_000)
        data = (
            image_bytes(s, path.name, size)
            if ext in (".jpg", ".png")
            else small_file_bytes(s, path.name, _muni_of(root, path), size)
        )
        path.write_bytes(data)
        report.new_bytes["small"] += len(data)
        report.files_added += 1


def _muni_of(root: Path, path: Path) -> str:
    name = path.relative_to(root).parts[1]
    return next((m.slug for m in MUNICIPALITIES if m.name == name), MUNICIPALITIES[0].slug)


def _files(root: Path, category: str) -> list[Path]:
    return sorted(p for p in (root / CATEGORY_DIRS[category]).rglob("*") if p.is_file())


def mutate_dataset(root: Path, pct: float, seed: int, round_: int = 1) -> MutationReport:
    """Edit the dataset at ``root`` in place so that about ``pct`` % of its bytes are new."""
    if not (root / "sql").is_dir():
        raise SystemExit(f"bench.dataset: {root} holds no generated dataset (no sql/ directory)")
    before = survey(root).total_bytes
    report = MutationReport(bytes_before=before)
    rng = random.Random(file_seed(seed, f"mutate/{round_}"))
    budget = before * pct / 100
    scans, smalls, dumps = _files(root, "scan"), _files(root, "small"), _files(root, "sql")
    shares = dict(_BUDGET_SHARES)
    for category, paths in (("scan", scans), ("small", smalls)):
        if not paths:  # a dataset without this category: the dumps take its share
            shares["sql"] += shares.pop(category)
    if scans:
        _mutate_scans(root, scans, rng, budget * shares["scan"], seed, round_, report)
    if smalls:
        _mutate_small(root, smalls, rng, budget * shares["small"], seed, round_, report)
    sizes = [p.stat().st_size for p in dumps]
    sql_budget = budget * shares["sql"]
    weights = [s * rng.uniform(0.5, 1.5) for s in sizes]
    for path, w in zip(dumps, weights, strict=True):
        _mutate_dump(path, rng, sql_budget * w / sum(weights), report)
    report.bytes_after = survey(root).total_bytes
    return report
