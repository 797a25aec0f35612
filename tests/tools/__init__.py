"""Tests of the development tools (simulator, test harness figures)."""
