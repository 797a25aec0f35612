# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The heap is frozen when a registry was loaded, and unfrozen for good when
one frozen is gone (replaced, dropped, evicted: it must be collectable)."""

import gc
from types import SimpleNamespace
from unittest import TestCase

from odoo.modules.registry import Registry
from odoo.tools import config

from ....services.runner.heap import YOUNG, _Heap, _live_registries


class Registries:
    """Stands in for Odoo's registry cache; the test keeps every registry it
    made alive, so that no id is reused."""

    def __init__(self):
        self.live = {}
        self.made = []

    def load(self, db_name):
        registry = SimpleNamespace(db_name=db_name)
        self.made.append(registry)
        self.live[db_name] = registry
        return registry

    def __call__(self):
        return list(self.live.values())


class TestHeap(TestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(gc.unfreeze)
        gc.unfreeze()
        self.registries = Registries()
        self.heap = _Heap(self.registries)

    def test_frozen_when_a_registry_was_loaded(self):
        self.registries.load("one")
        self.assertTrue(self.heap.settle())
        frozen = gc.get_freeze_count()
        self.assertGreater(frozen, 1000)
        born_since = [[] for _ in range(10_000)]  # a second freeze takes them
        self.assertFalse(self.heap.settle())  # every reconcile calls it
        # Another thread may free a frozen object (the count drops by it);
        # only a second freeze makes it grow.
        self.assertLessEqual(gc.get_freeze_count(), frozen)
        del born_since
        self.registries.load("two")  # another database's
        self.assertTrue(self.heap.settle())

    def test_the_young_generation_waits_longer_once_frozen(self):
        self.addCleanup(gc.set_threshold, *gc.get_threshold())
        gc.set_threshold(700, 10, 10)
        self.assertFalse(self.heap.settle())  # nothing loaded: nothing changes
        self.assertEqual(gc.get_threshold(), (700, 10, 10))
        self.registries.load("one")
        self.assertTrue(self.heap.settle())
        self.assertEqual(gc.get_threshold(), (YOUNG, 10, 10))
        gc.set_threshold(50_000, 5, 20)  # an administrator's: kept
        self.registries.load("two")
        self.assertTrue(self.heap.settle())
        self.assertEqual(gc.get_threshold(), (50_000, 5, 20))

    def test_a_registry_gone_unfreezes_for_good(self):
        for gone in ("rebuilt", "dropped"):
            with self.subTest(gone):
                gc.unfreeze()
                heap = _Heap(self.registries)
                self.registries.load("one")
                self.registries.load("two")
                self.assertTrue(heap.settle())
                garbage = [[]]
                garbage[0].append(garbage)  # a cycle, frozen with them
                gc.freeze()
                frozen = gc.get_freeze_count()
                if gone == "rebuilt":
                    self.registries.load("two")
                else:
                    del self.registries.live["two"]
                self.assertFalse(heap.settle())
                # (CPython 3.12 counts a few hundred objects of its own.)
                self.assertLess(gc.get_freeze_count(), frozen / 2)
                del garbage
                self.assertGreaterEqual(gc.collect(), 2)  # collectable again
                self.registries.load("three")
                self.assertFalse(heap.settle())
                self.assertLess(gc.get_freeze_count(), frozen / 2)

    def test_a_registry_built_while_freezing_unfreezes_for_good(self):
        self.registries.load("one")
        calls = []

        def registries():
            calls.append(1)
            if len(calls) == 2:  # the look after the freeze
                self.registries.load("two")
            return self.registries()

        heap = _Heap(registries)
        self.assertFalse(heap.settle())
        self.assertLess(gc.get_freeze_count(), 1000)
        self.assertFalse(heap.settle())

    def test_the_registries_are_odoos_and_their_cache_order_stays(self):
        registry = Registry(config["db_name"])  # a lookup: it comes first
        order = list(Registry.registries.d)
        self.assertIn(registry, _live_registries())
        self.assertEqual(list(Registry.registries.d), order)
