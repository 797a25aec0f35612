"""Tests of ``services/engine`` (pure): the state machine, the engine, purity."""
