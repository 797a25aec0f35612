"""Tests of ``parsers`` (pure): each message kind, fuzzing, the real captures."""
