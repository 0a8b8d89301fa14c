"""Text from outside (a file name, a snapshot reference, a tag, an OS's words) on one line
of a person's terminal.

Such text may hold what a terminal obeys instead of showing: escape sequences (ESC, the C1
controls such as CSI ``\\x9b``), carriage returns and line breaks that fake or cut a line,
and Unicode format characters such as the bidi overrides (U+202E) that show text in another
order than it is read. Spaces of every kind stay: a Japanese name's full-width space
(U+3000) is text.
"""

from __future__ import annotations

import unicodedata

#: control (C0, DEL, C1), format (bidi, zero-width), line and paragraph separators, surrogates
#: (the undecodable bytes of a name, from ``os.fsdecode``)
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def hidden(c: str) -> bool:
    """True when the character ``c`` would act on a terminal rather than be shown."""
    return not c.isprintable() and unicodedata.category(c) in _HIDDEN


def one_line(text: str) -> str:
    """``text`` with every :func:`hidden` character written as its Python escape (``\\x1b``,
    ``\\n``, ``\\u202e``): one line, shown as it is, nothing lost."""
    if text.isprintable():  # nearly every line: no per-character work
        return text
    return "".join(repr(c)[1:-1] if hidden(c) else c for c in text)
