"""Metrics, health checks, alert rules and the scheduler service (``bcpctl serve``).

Values that live in the control database are read at scrape time by one custom collector
(:mod:`monitoring.metrics`), fed by one small provider function per subsystem
(:mod:`monitoring.sources`). ``bcpctl serve`` runs the scheduled jobs as the single leader of
its control database (:mod:`monitoring.lease`, :mod:`monitoring.controller`).
"""
