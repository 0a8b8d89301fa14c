"""Token buckets: a burst, then the steady rate; memory bounded."""

from __future__ import annotations

from bcpctl.web.ratelimit import RateLimiter


def test_burst_then_refill() -> None:
    clock = [0.0]
    limiter = RateLimiter(60, clock=lambda: clock[0])
    assert [limiter.take("koga") for _ in range(60)] == [0.0] * 60
    assert limiter.take("koga") == 1.0
    assert limiter.take("tsukuba") == 0.0  # buckets are per key
    clock[0] += 1.0
    assert limiter.take("koga") == 0.0 and limiter.take("koga") > 0


def test_memory_stays_bounded() -> None:
    clock = [0.0]
    limiter = RateLimiter(10, clock=lambda: clock[0], max_keys=100)
    for i in range(1000):
        limiter.take(f"addr-{i}")
    assert len(limiter._buckets) <= 100
