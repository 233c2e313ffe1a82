"""vigil.pool: the reconnection backoff is capped (psycopg_pool's doubles without a bound).
The recovery itself, end to end, is tests/faults/test_database_faults.py (full disk)."""

from __future__ import annotations

from psycopg_pool.base import AttemptWithBackoff

from vigil.pool import RECONNECT_MAX_DELAY, WAIT_SECONDS, CappedBackoff, Pool


def delays(attempt: AttemptWithBackoff, n: int) -> list[float]:
    out = []
    for i in range(n):
        attempt.update_delay(now=float(i))
        out.append(attempt.delay)
    return out


def test_the_delay_doubles_up_to_the_cap_and_stops_at_the_timeout() -> None:
    plain = delays(AttemptWithBackoff(timeout=300.0), 8)
    capped = delays(CappedBackoff(timeout=300.0), 8)
    assert plain[-1] > 60  # what the cap is for
    assert 0.8 < capped[0] < 1.2 and capped[1] == 2 * capped[0]  # the same start (jittered)
    assert max(capped) == RECONNECT_MAX_DELAY and capped[-3:] == [RECONNECT_MAX_DELAY] * 3
    short = delays(CappedBackoff(timeout=3.0), 4)
    assert short[-1] <= 3.0  # never past the reconnect timeout


def test_requests_wait_less_than_psycopg_pools_default() -> None:
    pool = Pool("dbname=nothing", min_size=1, max_size=2)
    assert pool.timeout == WAIT_SECONDS < 30 and pool.kwargs == {"autocommit": True}
