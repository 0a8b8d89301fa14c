"""The runbooks as web pages: ``/runbook/ja`` and ``/runbook/en`` on ``bcpctl serve`` and ``bcpctl web``.

Every alert's ``runbook_url`` points to a section of the Japanese page
(``bcpctl monitoring rules --external-url`` writes the absolute address): the operator
paged at 03:00 opens the link on any device, not a path in a repository. The pages are
docs/runbook.ja.md and docs/runbook.md as shipped (``bcpctl/docs`` in a wheel), rendered by
markdown-it-py (CommonMark with tables); the markdown's own ``<a id>`` anchors are the
stable fragment ids (tests/test_runbook.py keeps them equal in both languages), and each
heading also gets an ``id`` from its text for links people copy from the page.

:data:`router` serves them; both processes include it, so an alert's link opens whichever of
the two the operator runs.
"""

from __future__ import annotations

import html
import re
from functools import cache

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dc.shipped import shipped_folder

#: language -> the markdown file it is rendered from
PAGES = {"ja": "runbook.ja.md", "en": "runbook.md"}

_STYLE = """
body { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", sans-serif; line-height: 1.6;
       max-width: 60rem; margin: 0 auto; padding: 1rem; }
pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
code { font-size: .95em; }
table { border-collapse: collapse; } td, th { border: 1px solid #999; padding: .2rem .4rem; vertical-align: top; }
:target { outline: 3px solid #c60; }
@media print { pre { page-break-inside: avoid; } nav { display: none; } }
"""


def heading_id(text: str) -> str:
    """A heading's id from its words: lower case, letters and digits of any script kept, spaces as ``-``."""
    words = re.sub(r"[^\w\s-]", "", text.strip().lower())
    return re.sub(r"\s+", "-", words).strip("-")


@cache
def page(lang: str) -> str:
    """The runbook of ``lang`` (a key of :data:`PAGES`) as one HTML document."""
    from markdown_it import MarkdownIt

    source = (shipped_folder("bcpctl", "docs") / PAGES[lang]).read_text(encoding="utf-8")
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = md.parse(source)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and tokens[i + 1].type == "inline":
            token.attrSet("id", heading_id(tokens[i + 1].content))
    body = md.renderer.render(tokens, md.options, {})
    title = next((t.content for t in tokens if t.type == "inline"), "runbook")
    other = "en" if lang == "ja" else "ja"
    switch = "English (英語版)" if other == "en" else "日本語 (Japanese)"
    return (
        f'<!doctype html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<nav><a href="/runbook/{other}">{switch}</a></nav>\n{body}</body>\n</html>\n'
    )


#: the runbook pages load nothing and run nothing: their own styles only
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

router = APIRouter(include_in_schema=False)


@router.api_route("/runbook/{lang}", methods=["GET", "HEAD"])
async def runbook_page(lang: str) -> Response:
    if lang not in PAGES:
        return PlainTextResponse("no such runbook: /runbook/ja or /runbook/en\n", 404)
    return HTMLResponse(await run_in_threadpool(page, lang), headers={"Content-Security-Policy": CSP})


@router.api_route("/runbook", methods=["GET", "HEAD"])
async def runbook_index() -> Response:
    return RedirectResponse("/runbook/ja", 307)
