"""Small office files: notices and lists (text, CSV, Markdown, HTML), system configs, photos.

Thousands of them make up the metadata-heavy part of the dataset: a backup tool's per-file
overhead (stat, tree entries, small packs) shows here, not in the big dumps.
"""

from __future__ import annotations

import random

from bench import vocabulary as v
from bench.scans import image_bytes
from bench.sqltables import RECENT_DATES, context

_LINE_BYTES = 150  # about one generated text line in UTF-8


def _text_lines(rng: random.Random, muni_slug: str, n: int) -> list[str]:
    ctx = context(muni_slug)
    return [
        f"{d} {name}様 {s}（受付番号{no}）"
        for d, name, s, no in zip(
            rng.choices(RECENT_DATES, k=n),
            rng.choices(ctx.names, k=n),
            rng.choices(v.SENTENCES, k=n),
            rng.choices(range(100_000, 999_999), k=n),
            strict=True,
        )
    ]


def _csv_lines(rng: random.Random, muni_slug: str, n: int) -> list[str]:
    ctx = context(muni_slug)
    idx = rng.choices(range(len(ctx.names)), k=n)
    return [
        f"{no},{ctx.names[i]},{ctx.kana[i]},{addr}{banchi},{d},{kind}"
        for no, i, addr, banchi, d, kind in zip(
            rng.choices(range(100_000, 999_999), k=n),
            idx,
            rng.choices(ctx.addresses, k=n),
            rng.choices(ctx.banchi, k=n),
            rng.choices(RECENT_DATES, k=n),
            rng.choices(("申請", "届出", "照会", "交付", "還付"), k=n),
            strict=True,
        )
    ]


def _config_lines(rng: random.Random, n: int) -> list[str]:
    keys = ("host", "port", "pool_size", "timeout_ms", "batch_window", "log_level", "retention_days", "tenant")
    values = {
        "host": [f"app{i:02d}.dc.invalid" for i in range(40)],
        "port": [str(p) for p in (5432, 8080, 8443, 9100, 1521, 22)],
        "pool_size": [str(i) for i in range(4, 64, 4)],
        "timeout_ms": [str(i * 500) for i in range(1, 40)],
        "batch_window": ["01:00-05:00", "22:00-04:00", "00:30-03:30"],
        "log_level": ["INFO", "WARN", "DEBUG"],
        "retention_days": [str(d) for d in (7, 30, 90, 365, 2555)],
        "tenant": [m.slug for m in v.MUNICIPALITIES],
    }
    chosen = rng.choices(keys, k=n)
    return [f"{k}: {rng.choice(values[k])}  # 設定{i}" for i, k in enumerate(chosen)]


def _lines(rng: random.Random, name: str, muni_slug: str, size: int) -> list[str]:
    n = max(1, size // _LINE_BYTES)
    if name.endswith(".csv"):
        return _csv_lines(rng, muni_slug, n)
    if name.endswith((".yaml", ".conf")):
        return _config_lines(rng, max(1, size // 40))
    return _text_lines(rng, muni_slug, n)


def small_file_bytes(seed: int, name: str, muni_slug: str, size: int) -> bytes:
    """The content of one small file, about ``size`` bytes, its kind taken from the extension."""
    if name.endswith((".png", ".jpg")):
        return image_bytes(seed, name, size)
    rng = random.Random(seed)
    lines = _lines(rng, name, muni_slug, size)
    if name.endswith(".html"):
        lines = ["<html><head><meta charset='utf-8'></head><body>", *(f"<p>{x}</p>" for x in lines), "</body></html>"]
    elif name.endswith(".md"):
        lines = [f"# {v.DEPARTMENTS[seed % len(v.DEPARTMENTS)]} 業務連絡", "", *(f"- {x}" for x in lines)]
    return ("\n".join(lines) + "\n").encode()


def appended_lines(seed: int, name: str, muni_slug: str, size: int) -> bytes:
    """About ``size`` bytes of new lines of the same kind, as a day's edit appends them."""
    return ("\n".join(_lines(random.Random(seed), name, muni_slug, size)) + "\n").encode()
