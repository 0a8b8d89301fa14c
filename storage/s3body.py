"""An S3 request body over a buffer (a mapped pack or loaded bytes), sent without copying."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class BodyReader(io.RawIOBase):
    """A request body over a buffer, read as views into it.

    botocore wraps ``bytes`` in ``BytesIO``, whose reads copy every block once more; on a host
    where memory bandwidth bounds the upload that copy is measurable. ``read(size)`` keeps the
    :class:`io.RawIOBase` contract — at most ``size`` bytes, everything left for ``read()``
    or ``read(-1)``, empty at the end — but returns a ``memoryview`` slice instead of a copy
    (urllib3 asks for 128 KiB at a time and sends whatever bytes-like object it gets).
    ``readinto`` copies, for callers that bring their own buffer. ``len`` gives botocore the
    Content-Length, ``seek``/``tell`` let it rewind the body for a retry.
    """

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view if view.format == "B" else view.cast("B")
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> memoryview:
        if self.closed:
            raise ValueError("read of a closed request body")
        left = len(self._view) - self._pos
        count = left if size is None or size < 0 else min(size, left)
        chunk = self._view[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        chunk = self.read(len(target))
        target[: len(chunk)] = chunk
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos
