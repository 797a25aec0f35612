"""The one backoff: a delay that grows by a factor up to a cap, with jitter.

Used for broker reconnects (client.py), the database runner's restarts and a
batch's write retries (services/runner/).
"""

import random


class Backoff:
    """Delays ``minimum``, ``minimum * factor``, ... capped at ``maximum``.

    ``jitter`` spreads each delay over ``[d, d * (1 + jitter)]`` so that
    several runners retrying the same conflict do not retry in step.
    ``reset`` starts over (after a success).
    """

    def __init__(
        self,
        minimum: float = 5.0,
        maximum: float = 300.0,
        factor: float = 1.5,
        jitter: float = 0.0,
    ) -> None:
        if not 0 < minimum <= maximum or factor < 1 or jitter < 0:
            raise ValueError(
                f"need 0 < minimum <= maximum, factor >= 1, jitter >= 0: "
                f"{minimum!r}, {maximum!r}, {factor!r}, {jitter!r}"
            )
        self.minimum = minimum
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._next = minimum

    def next(self) -> float:
        """The delay to wait now; the following one grows."""
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        if self.jitter:
            delay *= 1.0 + self.jitter * random.random()
        return delay

    def reset(self) -> None:
        self._next = self.minimum
