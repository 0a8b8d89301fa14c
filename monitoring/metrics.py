"""The custom collector behind ``/metrics``: control-database values read at scrape time.

client_python calls ``describe()`` when a collector is registered and, without one, calls
``collect()`` instead — which would query the database at import time. ``describe()`` here
returns the families from :mod:`monitoring.catalog` without any I/O. Each scrape asks every
provider of :mod:`monitoring.sources`; a provider that fails is reported through
``bcp_metrics_source_ok{source}=0`` and leaves its families empty, so one broken subsystem
never blanks the whole page, and nothing stale or invented fills the gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from monitoring.catalog import BY_NAME, FAMILIES, Family
from monitoring.provider import Provider, Reading, SourceContext
from monitoring.sources import PROVIDERS

log = logging.getLogger("bcpctl.metrics")


MetricFamily = CounterMetricFamily | GaugeMetricFamily


def _family(spec: Family) -> MetricFamily:
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


class ControlDatabaseCollector(Collector):
    """Yields every catalogued family, filled from the providers at each scrape."""

    def __init__(self, context: SourceContext, providers: Mapping[str, Provider] | None = None) -> None:
        self.context = context
        self.providers = dict(PROVIDERS if providers is None else providers)

    def describe(self) -> Iterator[Metric]:
        for spec in FAMILIES:
            yield _family(spec)

    def collect(self) -> Iterator[Metric]:
        families = {spec.name: _family(spec) for spec in FAMILIES}
        health = families["bcp_metrics_source_ok"]
        for name, provider in self.providers.items():
            try:
                readings = list(provider(self.context))
            except Exception as exc:  # a broken subsystem must not take /metrics down with it
                log.warning("metrics source %s failed: %s: %s", name, type(exc).__name__, exc)
                health.add_metric([name], 0.0)
                continue
            health.add_metric([name], 1.0)
            for reading in readings:
                _add(families, reading)
        yield from families.values()


def _add(families: dict[str, MetricFamily], reading: Reading) -> None:
    spec = BY_NAME[reading.family]
    if len(reading.labels) != len(spec.labels):
        raise ValueError(f"{reading.family} takes labels {spec.labels}, got {reading.labels}")
    families[reading.family].add_metric(list(reading.labels), reading.value)


def leader_provider(is_leader: Callable[[], bool]) -> Provider:
    """This process's own role, for ``bcp_scheduler_leader`` (not a database value)."""

    def provide(_ctx: SourceContext) -> Iterator[Reading]:
        yield Reading("bcp_scheduler_leader", (), 1.0 if is_leader() else 0.0)

    return provide


def build_registry(context: SourceContext, extra: Mapping[str, Provider] | None = None) -> CollectorRegistry:
    """A fresh registry holding only bcpctl's collector (no process or platform collectors)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ControlDatabaseCollector(context, {**PROVIDERS, **(extra or {})}))
    return registry
