# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The heap is frozen once per loaded registry, and unfrozen for good when a
registry is rebuilt in the process (the old one must be collectable)."""

import gc
from types import SimpleNamespace
from unittest import TestCase

from ....services.runner.heap import _Heap


class TestHeap(TestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(gc.unfreeze)
        gc.unfreeze()

    def test_frozen_once_per_registry(self):
        heap = _Heap()
        one, two = SimpleNamespace(db_name="one"), SimpleNamespace(db_name="two")
        self.assertTrue(heap.settle(one))
        frozen = gc.get_freeze_count()
        self.assertGreater(frozen, 1000)
        self.assertFalse(heap.settle(one))  # every reconcile calls it
        self.assertEqual(gc.get_freeze_count(), frozen)
        self.assertTrue(heap.settle(two))  # another database's runner

    def test_a_rebuilt_registry_unfreezes_for_good(self):
        heap = _Heap()
        self.assertTrue(heap.settle(SimpleNamespace(db_name="one")))
        garbage = [[]]
        garbage[0].append(garbage)  # a cycle, frozen with the first registry
        gc.freeze()
        frozen = gc.get_freeze_count()
        rebuilt = SimpleNamespace(db_name="one")
        self.assertFalse(heap.settle(rebuilt))
        # (CPython 3.12 counts a few hundred objects of its own as frozen.)
        self.assertLess(gc.get_freeze_count(), frozen / 2)
        del garbage
        self.assertGreaterEqual(gc.collect(), 2)  # collectable again
        self.assertFalse(heap.settle(SimpleNamespace(db_name="two")))
        self.assertFalse(heap.settle(rebuilt))
        self.assertLess(gc.get_freeze_count(), frozen / 2)
