"""The backend under test, opened from each parametrized ``storage_url`` the way production opens it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.backend import Backend
from storage.url import open_backend


@pytest.fixture
def backend(storage_url: str) -> Iterator[Backend]:
    b = open_backend(storage_url, create=True)
    try:
        yield b
    finally:
        b.close()
