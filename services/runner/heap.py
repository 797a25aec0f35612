"""Keep Python's cyclic garbage collector off the loaded registry.

A server's registry (models, fields, their caches: most of what the process
holds) is built once and lives as long as the process, yet every full
collection walks all of it again; at the runner's pace (a batch of objects
made and dropped several times a second) full collections come every half
minute.  Once a database's registry is loaded, ``settle(registry)`` moves
everything alive to the permanent generation (``gc.freeze``): a full
collection then walks only what came later.

A registry rebuilt in a running process (a module installed or upgraded)
must be collectable when the last request using it ends, which a frozen one
never is: the heap is then unfrozen for the rest of the process's life
(a restart settles it again).  Process-wide, as the collector is; the
runners of several databases in one process each settle their own.
"""

import gc
import logging
import threading
import time

_logger = logging.getLogger(__name__)


class _Heap:
    def __init__(self):
        self.lock = threading.Lock()
        self.registries: dict[str, int] = {}  # database -> id() of its registry
        self.given_up = False

    def settle(self, registry) -> bool:
        """Freeze the heap once ``registry`` is loaded; whether it did now."""
        with self.lock:
            seen = self.registries.get(registry.db_name)
            if self.given_up or seen == id(registry):
                return False
            if seen is not None:
                gc.unfreeze()
                self.given_up = True
                _logger.info(
                    "Registry of %s rebuilt: the heap is no longer kept out "
                    "of the garbage collector's full passes until a restart",
                    registry.db_name,
                )
                return False
            started = time.monotonic()
            collected = gc.collect()
            gc.freeze()
            self.registries[registry.db_name] = id(registry)
            _logger.info(
                "Registry of %s loaded: %d objects kept out of the garbage "
                "collector's full passes (%d collected first, %.0f ms)",
                registry.db_name,
                gc.get_freeze_count(),
                collected,
                (time.monotonic() - started) * 1000,
            )
            return True


settle = _Heap().settle
