"""Tests of ``services``, one package per layer."""
