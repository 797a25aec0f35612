"""The per-machine message cap: a token bucket that lets an outage's backlog through.

Pure; the clock is passed in (monotonic seconds), so tests drive it directly.
"""

# A backlog let through after an outage: at most this much time's worth...
MAX_CATCH_UP_S = 3600.0
# ... and for at least this long after the reconnect (or the outage's length).
CATCH_UP_WINDOW_S = 60.0


class TokenBucket:
    """Per-device message cap: ``rate`` per second with a burst of 2 s.

    After an outage (broker down, Odoo restarted, another node taking over)
    the broker, or the meter itself, delivers what was sent meanwhile all at
    once: ``catch_up`` lets that backlog through, up to ``rate`` per second
    of the outage, so a meter that kept under its cap loses nothing.  Credit
    above the burst is only spent, never refilled, and lapses once such a
    backlog has had time to arrive.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp", "credit_until")

    rate: float
    burst: float
    tokens: float
    stamp: float
    credit_until: float

    def __init__(self, rate: float, now: float) -> None:
        self.rate = float(max(1, rate))
        self.burst = 2.0 * self.rate
        self.tokens = self.burst
        self.stamp = now
        self.credit_until = now

    def _refill(self, now: float) -> None:
        if self.tokens < self.burst:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        elif now >= self.credit_until:
            self.tokens = self.burst  # unspent catch-up credit lapses
        self.stamp = now

    def allow(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def calm(self, now: float) -> bool:
        """Back under the cap for a while (half the burst saved up)."""
        self._refill(now)
        return self.tokens >= self.burst / 2

    def catch_up(self, outage_s: float, now: float) -> None:
        """The runner could not listen for ``outage_s`` seconds: credit it."""
        outage_s = min(outage_s, MAX_CATCH_UP_S)
        if not outage_s > 0.0:
            return
        self._refill(now)
        self.tokens += self.rate * outage_s
        self.credit_until = max(
            self.credit_until, now + max(CATCH_UP_WINDOW_S, outage_s)
        )

    def set_rate(self, rate: float) -> None:
        """A new cap (the machine's configuration changed); the tokens stay."""
        self.rate = float(max(1, rate))
        self.burst = 2.0 * self.rate
