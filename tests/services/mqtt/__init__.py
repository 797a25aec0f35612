"""Tests of ``services/mqtt``: texts, the tuned paho client, the backoff."""
