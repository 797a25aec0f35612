"""The session engine: MQTT messages in, sessions and a sealed batch out.

Owns the session state machine (machine.py, types.py), history replay
(replay.py), the per-machine runtime (device.py, rate_limit.py), the owned
connections and routes (fleet.py), the message handling (core.py) and the
batch, the one contract with the database writer (batch.py); one time
conversion (timebase.py).

Pure: imports the standard library and ``parsers`` only, never Odoo,
psycopg2 or the transport (tests/services/engine/test_purity.py checks it).
"""
