"""The one backoff: reconnects, the runner's restarts, a batch's retries."""

import pytest

from ....services.mqtt.backoff import Backoff


def test_grows_by_the_factor_up_to_the_cap_and_resets():
    backoff = Backoff(5.0, 300.0, 1.5)
    delays = [backoff.next() for _ in range(12)]
    assert delays[:4] == [5.0, 7.5, 11.25, 16.875]
    assert max(delays) == 300.0 and delays[-1] == 300.0
    backoff.reset()
    assert backoff.next() == 5.0


def test_jitter_stays_within_its_spread():
    backoff = Backoff(1.0, 8.0, 2.0, jitter=0.5)
    for base in (1.0, 2.0, 4.0, 8.0, 8.0):
        delay = backoff.next()
        assert base <= delay <= base * 1.5


def test_jitter_spreads_two_retriers_apart():
    first = [Backoff(0.05, 10.0, 2.0, jitter=1.0).next() for _ in range(50)]
    assert len(set(first)) > 40


@pytest.mark.parametrize(
    "args",
    [(0.0, 1.0, 2.0), (2.0, 1.0, 2.0), (1.0, 2.0, 0.5), (1.0, 2.0, 2.0, -1.0)],
)
def test_nonsense_settings_are_refused(args):
    with pytest.raises(ValueError, match="need 0 < minimum <= maximum"):
        Backoff(*args)
