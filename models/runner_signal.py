"""Wake the runner after a configuration change (the models' one signal to it).

Two signals, because either alone can miss: a PostgreSQL NOTIFY, delivered
only when the transaction commits (so the runner never acts on a change that
is rolled back), and a revision sequence the runner polls every second, which
also reaches a runner whose LISTEN connection was just re-established.  The
NOTIFY payload is the database name: one runner process may serve several.
"""

from psycopg2 import sql

CHANNEL = "open_workshop_mqtt"
REV_SEQUENCE = "open_workshop_mqtt_config_rev"


def notify_runner(cr):
    cr.execute(
        "SELECT nextval(%s), pg_notify(%s, %s)", (REV_SEQUENCE, CHANNEL, cr.dbname)
    )


def create_revision_sequence(cr):
    cr.execute(
        sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}").format(sql.Identifier(REV_SEQUENCE))
    )
