"""The per-machine message cap (TokenBucket), driven by a hand-held clock."""

import pytest

from ....services.engine.rate_limit import (
    CATCH_UP_WINDOW_S,
    MAX_CATCH_UP_S,
    TokenBucket,
)


def drain(bucket, now, limit=100_000):
    """Messages allowed at one instant until the bucket refuses."""
    n = 0
    while n < limit and bucket.allow(now):
        n += 1
    return n


def test_burst_is_two_seconds_of_the_rate_then_the_rate():
    bucket = TokenBucket(10, now=0.0)
    assert drain(bucket, 0.0) == 20
    assert not bucket.allow(0.0)
    assert drain(bucket, 1.0) == 10  # refilled at 10/s
    assert drain(bucket, 1.05) == 0  # half a token: not yet
    assert drain(bucket, 1.1) == 1


def test_refill_never_exceeds_the_burst():
    bucket = TokenBucket(5, now=0.0)
    assert drain(bucket, 3600.0) == 10


def test_a_rate_below_one_counts_as_one():
    bucket = TokenBucket(0, now=0.0)
    assert (bucket.rate, bucket.burst) == (1.0, 2.0)


def test_calm_means_half_the_burst_saved():
    bucket = TokenBucket(10, now=0.0)
    drain(bucket, 0.0)
    assert not bucket.calm(0.5)  # 5 tokens of 20
    assert bucket.calm(1.0)  # 10 tokens: half the burst


def test_catch_up_lets_an_outage_backlog_through_once():
    bucket = TokenBucket(10, now=0.0)
    bucket.catch_up(30.0, now=100.0)  # 30 s nobody listened
    assert drain(bucket, 100.0) == 20 + 300
    # Spent credit is not refilled above the burst.
    assert drain(bucket, 101.0) == 10


def test_unspent_catch_up_credit_lapses_after_the_window():
    bucket = TokenBucket(10, now=0.0)
    bucket.catch_up(10.0, now=0.0)
    assert drain(bucket, CATCH_UP_WINDOW_S + 1.0) == 20


def test_catch_up_is_capped_and_ignores_nonsense():
    bucket = TokenBucket(1, now=0.0)
    bucket.catch_up(10 * MAX_CATCH_UP_S, now=0.0)
    assert drain(bucket, 0.0) == 2 + int(MAX_CATCH_UP_S)
    other = TokenBucket(1, now=0.0)
    for outage in (0.0, -5.0, float("nan")):
        other.catch_up(outage, now=0.0)
    assert drain(other, 0.0) == 2


@pytest.mark.parametrize("rate", [3, 50])
def test_set_rate_keeps_the_tokens_and_moves_the_burst(rate):
    bucket = TokenBucket(10, now=0.0)
    drain(bucket, 0.0)
    bucket.set_rate(rate)
    assert (bucket.rate, bucket.burst) == (float(rate), 2.0 * rate)
    assert drain(bucket, 1.0) == rate
