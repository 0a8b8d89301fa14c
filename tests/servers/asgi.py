"""An ASGI app on a real uvicorn on loopback, in a thread of the test process.

The same server settings as ``bcpctl web`` and ``bcpctl serve`` (:func:`bcpctl.server.server`);
uvicorn leaves signals alone outside the main thread, so nothing is overridden here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bcpctl import server as http


@contextmanager
def serving(app: Any, timeout: float = 10.0) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) while ``app`` is served; the app's lifespan runs."""
    sock = http.bind("127.0.0.1", 0)
    base = f"http://{http.address(sock)}"
    server = http.server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield base
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
