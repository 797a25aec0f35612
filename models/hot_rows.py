# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Room on the page for the next version of the rows the runner rewrites.

The runner rewrites a machine's row (``mqtt_device``: live values, snapshots,
history tail) with every flush that carries a reading of it, and its
connection's row (``mqtt_connection``: counters, heartbeat) with every flush.
PostgreSQL can write such an update beside the old version on the same page
(a HOT update: no new index entries, the old version pruned when the page is
next read, no VACUUM needed) only when the page has room for it.  At the
default fill factor (100) the pages are full: many updates go to another page
(31 % with 1,000 machines), leave a dead version behind, and the table grows
by one each until VACUUM runs; where autovacuum is off or behind, every read
of the machines (the runner's reconcile, the live board) gets slower by the
hour.  Filling pages only to ``FILLFACTOR`` percent keeps those updates on
their page.
"""

from psycopg2 import sql

# Percent of a page new rows fill; the rest is for their next versions.  A
# machine's row is 1 to 2 kB: two or three to a page, and room for each one's
# next version while the versions of the flush before are not yet pruned.
FILLFACTOR = 30
# The tables whose rows the runner rewrites with every flush (their models set
# the fill factor; services/runner/upkeep.py vacuums them where nothing else does).
REWRITTEN = ("mqtt_device", "mqtt_connection")


def keep_updates_on_page(cr, table):
    """Set ``table``'s fill factor to ``FILLFACTOR`` unless it has one (an
    administrator's own stays); it applies to pages written from now on."""
    cr.execute("SELECT reloptions FROM pg_class WHERE oid = to_regclass(%s)", (table,))
    row = cr.fetchone()
    if row is None or any(o.startswith("fillfactor=") for o in row[0] or []):
        return
    cr.execute(
        sql.SQL("ALTER TABLE {} SET (fillfactor = {})").format(
            sql.Identifier(table), sql.Literal(FILLFACTOR)
        )
    )
