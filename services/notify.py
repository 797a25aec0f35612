"""Wake the runner after a configuration change (PostgreSQL NOTIFY).

PostgreSQL delivers a NOTIFY only when the transaction commits, so the runner
never sees a change that is later rolled back.  The payload is the database
name: one runner process may serve several databases.
"""

CHANNEL = "open_workshop_mqtt"


def notify_runner(cr):
    cr.execute("SELECT pg_notify(%s, %s)", (CHANNEL, cr.dbname))
