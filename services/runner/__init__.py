"""The runner: the engine hosted in the Odoo server, one per database.

Owns the hosting (hosting.py: a thread of the threaded server, a worker of a
prefork server), the process-wide runner (runner.py, ``MqttRunner``), the
database runner (database_runner.py, ``DatabaseRunner``) with its advisory locks
(locks.py), configuration loading (config.py), the batch writer (writer.py)
with its retry policy (flush.py), and ``SessionDetector`` (detector.py),
which writes one machine's sessions with the environment it is handed.

Imports Odoo, psycopg2, ``engine``, ``mqtt`` and ``models``; nothing imports
it but the addon's ``post_load`` hook.
"""
