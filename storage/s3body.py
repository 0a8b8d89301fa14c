"""An S3 request body over a buffer (a mapped pack or loaded bytes), sent without copying."""

from __future__ import annotations

import io

#: bytes handed to the socket per request-body read (see BodyReader)
SEND_SLICE = 4 * 1024 * 1024


class BodyReader(io.RawIOBase):
    """A request body over a buffer, handed to the socket in slices without copying.

    botocore wraps ``bytes`` in ``BytesIO``, whose reads copy every 128 KiB block once more; on
    a host where memory bandwidth bounds the upload that copy is measurable. Reads hand out at
    least :data:`SEND_SLICE` bytes (urllib3 asks for 128 KiB): every slice is one trip through
    the GIL, and on a busy two-core host each trip can wait a whole scheduler slice. ``len``
    gives botocore the Content-Length, ``seek``/``tell`` let it rewind the body for a retry.
    """

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> memoryview:  # type: ignore[override]
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + max(size, SEND_SLICE))
        chunk = self._view[self._pos : end]
        self._pos = end
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos
