"""A seeded, deterministic dataset shaped like a municipal data center's backup source.

Two shapes (issue 18: a tool fast on one shape of data may not be on another):

- ``mixed``: about 60 % of the bytes are pg_dump text (one dump per municipality and business
  system), 25 % incompressible scanned forms of a few MB, 15 % thousands of small office files.
- ``dumps``: most of the bytes (80 %) in a handful of large dumps — the biggest municipalities'
  core systems, over 100 MB each at 1 GiB — beside scanned forms (12 %) and a few thousand
  documents (8 %): the shape where a restore that gives one big file to one worker stalls.

Every file's bytes depend only on (seed, path), so the same seed gives identical bytes
whatever the number of worker processes. ``--mutate PCT`` applies a day's edits in place (see
``bench.mutation``).

    python -m bench.dataset --out DIR [--size 1G] [--seed 1] [--shape mixed|dumps] [--jobs N]
    python -m bench.dataset --out DIR --mutate 5 [--round 1] [--seed 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import vocabulary as v
from bench.documents import small_file_bytes
from bench.scans import scan_bytes
from bench.sqldump import dump_relpath, write_dump
from bench.systems import SYSTEMS

#: share of the dataset's bytes per category (issue 2, "Benchmark")
SHARES = {"sql": 0.60, "scan": 0.25, "small": 0.15}
#: the same for the ``dumps`` shape (issue 18)
DUMP_SHARES = {"sql": 0.80, "scan": 0.12, "small": 0.08}
#: how many dumps hold the ``dumps`` shape's SQL bytes
DUMP_COUNT = 5
SHAPES = ("mixed", "dumps")
#: top-level directory of each category
CATEGORY_DIRS = {"sql": "sql", "scan": "scans", "small": "files"}

_SMALL_KINDS = (  # extension, weight by count, min size, max size (log-uniform)
    ("txt", 20, 1_000, 60_000),
    ("csv", 15, 2_000, 120_000),
    ("md", 8, 500, 20_000),
    ("html", 7, 2_000, 60_000),
    ("yaml", 12, 200, 4_000),
    ("conf", 8, 200, 3_000),
    ("png", 10, 8_000, 150_000),
    ("jpg", 20, 8_000, 200_000),
)
_FORMS = ("住民異動届", "印鑑登録申請書", "課税資料", "介護認定調査票", "国保資格取得届", "罹災証明申請書")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class FileSpec:
    relpath: str
    category: str
    size: int
    muni: str
    system: str = ""


@dataclass(frozen=True)
class Summary:
    files: dict[str, int]
    bytes: dict[str, int]

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


def parse_size(text: str) -> int:
    """``1G``, ``20M``, ``1GiB``, ``500MB`` or a plain byte count; K/M/G/T are binary units."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    if t and t[-1] in _UNITS:
        return int(float(t[:-1]) * _UNITS[t[-1]])
    return int(t)


def file_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{name}".encode()).digest()[:8], "big")


def _pick_muni(rng: random.Random) -> v.Municipality:
    return rng.choices(v.MUNICIPALITIES, weights=[m.population for m in v.MUNICIPALITIES])[0]


def scan_size_hint(total: int) -> int:
    """Average scan size: a few MB at 1 GiB, smaller for small test datasets so a few still exist."""
    return min(4 << 20, max(64 << 10, total // 300))


def _sql_plan(budget: int, count: int | None = None) -> list[FileSpec]:
    """One dump per (municipality, system), sized by population and system weight; with
    ``count``, only the ``count`` biggest of them share the budget."""
    weights = {(m, s): m.population * w for m in v.MUNICIPALITIES for s, (w, _tables) in SYSTEMS.items()}
    if count is not None:
        weights = dict(sorted(weights.items(), key=lambda kv: -kv[1])[:count])
    total_w = sum(weights.values())
    return [
        FileSpec(dump_relpath(m.slug, m.code, s), "sql", int(budget * w / total_w), m.slug, s)
        for (m, s), w in weights.items()
    ]


def _scan_plan(rng: random.Random, budget: int, avg: int) -> list[FileSpec]:
    specs: list[FileSpec] = []
    used = 0
    while used < budget:
        muni = _pick_muni(rng)
        size = min(budget - used, int(avg * rng.uniform(0.5, 1.5)))
        if size < avg // 4 and specs:  # fold a tiny remainder into the last scan
            last = specs.pop()
            specs.append(FileSpec(last.relpath, "scan", last.size + size, last.muni))
            break
        ext = rng.choice(("pdf", "pdf", "tif"))
        name = f"scans/{muni.name}/{rng.choice(v.DEPARTMENTS)}/{rng.choice(_FORMS)}_{len(specs):05d}.{ext}"
        specs.append(FileSpec(name, "scan", size, muni.slug))
        used += size
    return specs


def _small_plan(rng: random.Random, budget: int) -> list[FileSpec]:
    specs: list[FileSpec] = []
    used = 0
    weights = [k[1] for k in _SMALL_KINDS]
    while used < budget:
        ext, _w, lo, hi = rng.choices(_SMALL_KINDS, weights=weights)[0]
        size = min(budget - used, int(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
        muni = _pick_muni(rng)
        i = len(specs)
        if ext in ("yaml", "conf"):
            name = f"files/{muni.name}/システム設定/{rng.choice(list(SYSTEMS))}/app_{i:06d}.{ext}"
        else:
            year = rng.choice((2022, 2023, 2024, 2025))
            name = f"files/{muni.name}/{rng.choice(v.DEPARTMENTS)}/{year}/文書_{i:06d}.{ext}"
        specs.append(FileSpec(name, "small", max(1, size), muni.slug))
        used += max(1, size)
    return specs


def plan(size: int, seed: int, shape: str = "mixed") -> list[FileSpec]:
    """Every file of the dataset with its target size; cheap, no file content yet."""
    if shape not in SHAPES:
        raise SystemExit(f"bench.dataset: unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    rng = random.Random(file_seed(seed, "plan"))
    shares = DUMP_SHARES if shape == "dumps" else SHARES
    return (
        _sql_plan(int(size * shares["sql"]), DUMP_COUNT if shape == "dumps" else None)
        + _scan_plan(rng, int(size * shares["scan"]), scan_size_hint(size))
        + _small_plan(rng, int(size * shares["small"]))
    )


def render(spec: FileSpec, seed: int) -> bytes:
    """The bytes of one scan or small file (dumps are streamed by ``write_dump``)."""
    s = file_seed(seed, spec.relpath)
    if spec.category == "scan":
        return scan_bytes(s, spec.relpath, spec.size)
    return small_file_bytes(s, spec.relpath, spec.muni, spec.size)


def _write_group(root: str, specs: list[FileSpec], seed: int) -> list[tuple[str, int]]:
    out = []
    for spec in specs:
        path = Path(root) / spec.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec.category == "sql":
            n = write_dump(path, spec.muni, spec.system, spec.size, file_seed(seed, spec.relpath))
        else:
            data = render(spec, seed)
            path.write_bytes(data)
            n = len(data)
        out.append((spec.category, n))
    return out


def _groups(specs: list[FileSpec], group_bytes: int) -> list[list[FileSpec]]:
    groups: list[list[FileSpec]] = [[]]
    acc = 0
    for spec in specs:
        if acc >= group_bytes or (spec.category == "sql" and groups[-1]):
            groups.append([])
            acc = 0
        groups[-1].append(spec)
        acc += spec.size
    return [g for g in groups if g]


def generate(out: Path, size: int, seed: int, jobs: int | None = None, shape: str = "mixed") -> Summary:
    """Write the dataset into ``out`` (which must not hold files yet)."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise SystemExit(f"bench.dataset: {out} is not empty (use --force to replace it)")
    specs = plan(size, seed, shape)
    # biggest tasks first so two workers finish together
    groups = sorted(_groups(specs, 16 << 20), key=lambda g: -sum(s.size for s in g))
    files = dict.fromkeys(SHARES, 0)
    sizes = dict.fromkeys(SHARES, 0)
    workers = jobs or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for result in pool.map(_write_group, [str(out)] * len(groups), groups, [seed] * len(groups)):
            for category, n in result:
                files[category] += 1
                sizes[category] += n
    return Summary(files, sizes)


def survey(root: Path) -> Summary:
    """Files and bytes per category of an existing dataset."""
    files = dict.fromkeys(SHARES, 0)
    sizes = dict.fromkeys(SHARES, 0)
    by_dir = {d: c for c, d in CATEGORY_DIRS.items()}
    for path in root.rglob("*"):
        if path.is_file():
            category = by_dir.get(path.relative_to(root).parts[0])
            if category:
                files[category] += 1
                sizes[category] += path.stat().st_size
    return Summary(files, sizes)


def cached(
    cache_root: Path, size: int, seed: int, jobs: int | None = None, shape: str = "mixed"
) -> tuple[Path, Summary]:
    """The dataset for (shape, seed, size) under ``cache_root``, generated once; a half-written one is redone."""
    home = cache_root / (f"s{seed}-{size}" if shape == "mixed" else f"{shape}-s{seed}-{size}")
    marker = home / "summary.json"
    if marker.exists():
        doc = json.loads(marker.read_text())
        return home / "data", Summary(doc["files"], doc["bytes"])
    if home.exists():
        shutil.rmtree(home)
    summary = generate(home / "data", size, seed, jobs, shape)
    marker.write_text(json.dumps(asdict(summary)))
    return home / "data", summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dataset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="dataset directory")
    parser.add_argument("--size", default="1G", help="total size, e.g. 1G, 200M (default 1G)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shape", choices=SHAPES, default="mixed", help="how the bytes are spread (default mixed)")
    parser.add_argument("--mutate", type=float, metavar="PCT", help="edit an existing dataset: about PCT%% new bytes")
    parser.add_argument("--round", type=int, default=1, help="which day's edits (--mutate); each round differs")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    if args.mutate is not None:
        from bench.mutation import mutate_dataset

        report = mutate_dataset(args.out, args.mutate, args.seed, args.round)
        print(json.dumps(asdict(report), ensure_ascii=False, indent=2))
        return 0
    if args.force and args.out.exists():
        shutil.rmtree(args.out)
    summary = generate(args.out, parse_size(args.size), args.seed, args.jobs, args.shape)
    print(json.dumps({**asdict(summary), "total_bytes": summary.total_bytes}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
