"""A loopback TCP proxy that damages one byte of one upload on the wire, then passes all else.

It stands between an S3 client and the real gateway to show what a bit flipped in transit
does: the gateway refuses the body against its declared digests, and the client sends the
same bytes again. Only 127.0.0.1 is ever connected to.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class FlipProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream``; flips the ``at``-th body byte of
    the first request whose request line starts with ``request_prefix``."""

    upstream: int
    request_prefix: bytes
    at: int = 100
    flipped: int = 0
    port: int = 0
    _listener: socket.socket = field(init=False, repr=False)
    _acceptor: threading.Thread = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __enter__(self) -> FlipProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # close() alone does not wake a thread blocked in accept(); shutdown() does
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upload: bool) -> None:
        seen = bytearray()  # this connection's bytes so far, kept only until the flip is done
        with contextlib.suppress(OSError):
            while received := src.recv(65536):
                chunk = bytearray(received)
                if upload and not self.flipped:
                    chunk = self._maybe_flip(seen, chunk)
                dst.sendall(chunk)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _maybe_flip(self, seen: bytearray, chunk: bytearray) -> bytearray:
        start = len(seen)
        seen += chunk
        request = seen.find(self.request_prefix)
        end = seen.find(b"\r\n\r\n", request) if request >= 0 else -1
        if end < 0:
            return chunk
        target = end + 4 + self.at
        if start <= target < len(seen):
            with self._lock:
                if not self.flipped:
                    chunk[target - start] ^= 0x01
                    self.flipped += 1
        return chunk
