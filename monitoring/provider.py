"""What a ``/metrics`` provider is: a function from the scrape's context to readings.

The providers themselves are in :mod:`monitoring.sources` (and :mod:`monitoring.controlplane`,
which sources calls); the collector (:mod:`monitoring.metrics`) runs them. All of them speak
these types, so the types live below every one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from dc.config import Consortium


@dataclass(frozen=True)
class Reading:
    family: str
    labels: tuple[str, ...]
    value: float


@dataclass
class SourceContext:
    engine: Engine
    config: Consortium


Provider = Callable[[SourceContext], Iterable[Reading]]
