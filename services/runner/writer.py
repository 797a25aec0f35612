"""Write one sealed batch in ONE transaction: ``write_batch(env, batch)``.

Reads the batch and nothing else of the engine.  Raw log rows go in with one
COPY, live machine fields with a COPY and one UPDATE ... FROM it, sessions
through the ORM (few, and their stored computed fields matter), connection
counters and the heartbeat with one UPDATE per connection, guarded by the
owner's fencing token: if another node took the connection over, the whole
batch is rolled back and dropped, so two nodes never both commit the same
readings.  Bus notifications are queued on the cursor and reach browsers
only when the commit succeeds.

``isolate=True`` (after a write failed for a reason that is no known
database condition, see flush.py) writes each machine's part under its own
savepoint: a machine whose part still fails is quarantined (its frames are
logged as ``error`` rows and acknowledged, the machine is flagged) and the
rest commits.
"""

import io
import json
import logging
import math
from collections import Counter

from psycopg2 import Binary, IntegrityError
from psycopg2.extras import execute_values

from ...models.mqtt_message import DEFAULT_MAX_PAYLOAD, PARAM_MAX_PAYLOAD
from ...models.mqtt_session_lifecycle import ORIGIN_RUNNER
from ..engine import history
from ..engine.batch import Batch, OpenSession, RawRow, WriteResult
from ..engine.engine import MAX_DISCOVERED, one_line
from ..engine.timebase import to_utc
from ..mqtt.texts import Text
from .detector import SessionDetector, SessionsChanged

_logger = logging.getLogger(__name__)


class LostOwnership(Exception):
    """Another runner holds the connection now: this batch must not land."""

    def __init__(self, connection_ids):
        super().__init__(f"connections taken over by another runner: {connection_ids}")
        self.connection_ids = connection_ids


def write_batch(env, batch: Batch, isolate=False, known=()) -> WriteResult:
    """Write ``batch``; return the sessions left open per machine.

    Raises LostOwnership when a fencing token no longer matches.  ``known``:
    exception types that are database conditions the caller handles; in
    isolating mode they are raised, not quarantined.
    """
    cr = env.cr
    _fence(cr, batch.connections)
    _create_discovered(env, batch)
    if isolate:
        session_ids = {}
        for dev_id in sorted(batch.device_ids() - set(batch.quarantined)):
            try:
                with cr.savepoint():
                    session_ids.update(_write_machines(env, batch, {dev_id}))
            except known:
                raise
            except (IntegrityError, SessionsChanged) as exc:
                # A refusal a resync did not cure: this machine's alone.
                _logger.error(
                    "The database refused machine %s's part of a batch (%s): "
                    "quarantined (its frames are logged as errors, the rest "
                    "commits)",
                    dev_id,
                    one_line(exc),
                )
                batch.quarantine(dev_id, one_line(exc))
            except Exception as exc:  # pylint: disable=broad-except
                _logger.exception(
                    "Writing machine %s's part of a batch failed: quarantined "
                    "(its frames are logged as errors, the rest commits)",
                    dev_id,
                )
                batch.quarantine(dev_id, one_line(exc))
    else:
        session_ids = _write_machines(env, batch, None)
    _insert_raw(env, [r for r in batch.raw_rows if r.device_id is None])
    errors = _write_quarantined(env, batch)
    _write_connections(cr, batch, errors)
    if batch.notify:
        env["mqtt.device"]._notify_changed(batch.notify)
    return WriteResult(session_ids)


def _write_machines(env, batch, dev_ids):
    """Sessions, live rows and raw rows of the given machines (None: all)."""

    def mine(dev_id):
        return dev_id is not None and (dev_ids is None or dev_id in dev_ids)

    works = [w for d, w in batch.sessions.items() if mine(d)]
    session_ids = _write_sessions(env, works)
    _write_live(env.cr, [r for d, r in batch.live.items() if mine(d)], session_ids)
    _insert_chunks(env.cr, [c for c in batch.history_chunks if mine(c.device_id)])
    _insert_raw(env, [r for r in batch.raw_rows if mine(r.device_id)])
    return session_ids


def _fence(cr, connections):
    """Lock our connection rows first; any takeover shows up here."""
    if not connections:
        return
    ids = list(connections)
    cr.execute(
        "SELECT id, runner_token FROM mqtt_connection WHERE id IN %s FOR NO KEY UPDATE",
        (tuple(ids),),
    )
    tokens = dict(cr.fetchall())
    lost = [cid for cid in ids if tokens.get(cid) != connections[cid].token]
    if lost:
        raise LostOwnership(lost)


def _create_discovered(env, batch):
    if not batch.discovered:
        return
    Device = env["mqtt.device"].with_context(active_test=False)
    for (conn_id, prefix), values in batch.discovered.items():
        if Device.search_count(
            [("connection_id", "=", conn_id), ("topic_prefix", "=", prefix)], limit=1
        ):
            continue
        waiting = Device.search_count(
            [("connection_id", "=", conn_id), ("discovery_state", "=", "discovered")]
        )
        if waiting >= MAX_DISCOVERED:
            continue  # a manager confirms or removes the ones waiting first
        connection = env["mqtt.connection"].browse(conn_id)
        try:
            with env.cr.savepoint():
                _create_one_discovered(Device, connection, prefix, values)
        except IntegrityError:
            # A manager created that machine at the same moment: it is known.
            _logger.info("Discovered %s was created meanwhile", prefix)


def _create_one_discovered(Device, connection, prefix, values):
    Device.create(
        {
            "name": values["src"],
            "connection_id": connection.id,
            "company_id": connection.company_id.id,
            "topic_prefix": prefix,
            "parser_type": values["parser_type"],
            "component": values["component"],
            "active": False,
            "discovery_state": "discovered",
        }
    )


def _write_sessions(env, works):
    """Each machine's SessionDetector writes its ops; the machines' running
    sessions are read in one query first, and the close hook runs once for
    all the sessions closed (the lifecycle's savepoint: it never fails the
    write)."""
    if not works:
        return {}
    env.cr.execute(
        "SELECT id, device_id FROM mqtt_session "
        "WHERE device_id IN %s AND state = 'running'",
        (tuple(w.device_id for w in works),),
    )
    running = dict(env.cr.fetchall())
    # The sessions the ops touch, read in one query each: those running (a
    # close or a progress compares its start) and those the opens find
    # (written before a crash, redelivered since).
    env["mqtt.session"].browse(list(running)).mapped("start_ts")
    # The machines too, in one query: each session created reads its machine
    # (its company, connection, ... are related fields), one query each.
    env["mqtt.device"].browse([w.device_id for w in works]).mapped("company_id")
    found = _sessions_found(env.cr, works)
    closed: list[int] = []
    session_ids = {
        w.device_id: SessionDetector(w.device_id, w.name).apply(
            env, w, running, closed, found
        )
        for w in works
    }
    if closed:
        env["mqtt.session"].browse(closed)._notify_closed(ORIGIN_RUNNER)
    return session_ids


def _sessions_found(cr, works):
    """{(machine id, start): (session id, state)} of the sessions the works'
    opens would create, when they are in the database already."""
    keys = [
        (w.device_id, op.start_ts)
        for w in works
        for op in w.ops
        if type(op) is OpenSession
    ]
    if not keys:
        return {}
    rows = execute_values(
        cr._obj,
        "SELECT s.device_id, s.start_ts, s.id, s.state FROM mqtt_session s "
        "JOIN (VALUES %s) AS k(device_id, start_ts) "
        "ON s.device_id = k.device_id AND s.start_ts = k.start_ts",
        keys,
        template="(%s, %s::float8)",
        fetch=True,
    )
    return {(dev, ts): (sid, state) for dev, ts, sid, state in rows}


# The live rows go through a temporary table: COPY in the text format costs
# the runner a third of the CPU of a multi-row VALUES list (psycopg2 adapts
# each value apart) and PostgreSQL less time too (200 rows: 2.4 to 2.9 vs 6.3
# to 8.9 ms of CPU, 11 vs 17 to 22 ms until committed).
_LIVE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS owm_live_row (
    id int4, state varchar, power float8, energy float8, last_msg timestamp,
    online bool, err varchar, rate_limited bool, fault varchar, dsnap jsonb,
    psnap jsonb, shelly_id varchar, session_id int4, happend bytea, hreset bool
) ON COMMIT DELETE ROWS
"""
_DEVICE_UPDATE = """
UPDATE mqtt_device AS d SET
    state_since = CASE WHEN d.current_state IS DISTINCT FROM v.state
        THEN (now() at time zone 'UTC') ELSE d.state_since END,
    current_state = v.state,
    current_power_w = v.power,
    current_energy_wh = COALESCE(v.energy, d.current_energy_wh),
    last_message_time = COALESCE(v.last_msg, d.last_message_time),
    online = COALESCE(v.online, d.online),
    meter_error = v.err,
    rate_limited = v.rate_limited,
    fault = COALESCE(v.fault, d.fault),
    detector_snapshot = v.dsnap,
    parser_snapshot = v.psnap,
    shelly_id = COALESCE(v.shelly_id, d.shelly_id),
    running_session_id = v.session_id,
    history_tail = CASE
        WHEN v.happend IS NULL THEN d.history_tail
        WHEN v.hreset THEN v.happend
        ELSE COALESCE(d.history_tail, ''::bytea) || v.happend
    END
FROM owm_live_row AS v
WHERE d.id = v.id
"""


def _write_live(cr, rows, session_ids):
    """The machines' live fields: COPY into a temporary table, one UPDATE
    from it, emptied again (a machine written apart under its savepoint
    must not see the previous machine's row)."""
    if not rows:
        return
    lines = []
    for row in sorted(rows):  # a stable lock order: no deadlock between writers
        append = row.history_append
        psnap = row.parser_snapshot
        lines.append(
            "\t".join(
                (
                    str(row.device_id),
                    _text(row.state),
                    str(row.power_w),
                    _text(row.energy_wh),
                    _stamp(row.last_message_ts),
                    _bool(row.online),
                    _text(row.meter_error),
                    _bool(row.rate_limited),
                    _text(row.fault),
                    _json(row.detector_snapshot),
                    _json(psnap) if psnap else "\\N",
                    _text(row.shelly_id),
                    _text(session_ids.get(row.device_id, row.session_id)),
                    "\\N" if append is None else "\\\\x" + append.hex(),
                    _bool(row.history_reset),
                )
            )
        )
    lines.append("")
    raw = cr._obj
    raw.execute(_LIVE_TABLE)
    raw.copy_expert("COPY owm_live_row FROM STDIN", io.StringIO("\n".join(lines)))
    raw.execute(_DEVICE_UPDATE + "; DELETE FROM owm_live_row")


# COPY's text format, written by hand: a third of what the csv module costs
# per row (it quotes every JSON quote), and no quoting to get wrong.
def _text(value):
    """A value as COPY's text format reads it: None, and an empty text, are
    NULL; a backslash, tab, newline and carriage return are escaped."""
    if value is None or value == "":
        return "\\N"
    if type(value) is not str:
        return str(value)
    return (
        value.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def _json(value):
    """JSON text for COPY: the encoder escapes every control character, so
    only its backslashes need doubling."""
    return _dumps(value).replace("\\", "\\\\")


def _bool(value):
    return "\\N" if value is None else ("t" if value else "f")


# (whole second, its text): the rows of a flush share a few seconds, so the
# date and time are formatted once per second, not once per row (one slot,
# replaced whole: runners of several databases may write at once).
_SECOND: list[tuple[float, str]] = [(-1.0, "")]


def _stamp(ts):
    """A device time as COPY's text format reads a UTC timestamp: what
    ``to_utc(ts).isoformat(sep=" ")`` gives (its microseconds rounded the
    same way, half to even)."""
    if ts is None:
        return "\\N"
    if ts < 0:
        return to_utc(ts).isoformat(sep=" ")
    frac, whole = math.modf(ts)
    micro = round(frac * 1e6)
    if micro >= 1_000_000:
        whole += 1.0
        micro -= 1_000_000
    second, text = _SECOND[0]
    if whole != second:
        text = to_utc(whole).isoformat(sep=" ")
        _SECOND[0] = (whole, text)
    return f"{text}.{micro:06d}" if micro else text


def _insert_chunks(cr, chunks):
    """The sealed power history chunks (mqtt.power.chunk), in one statement."""
    if chunks:
        execute_values(
            cr._obj,
            history.INSERT_CHUNKS,
            history.chunk_rows(chunks, Binary),
            template=history.CHUNK_TEMPLATE,
        )


_RAW_COLUMNS = (
    "connection_id, device_id, company_id, topic, payload, payload_size, "
    "truncated, qos, received_at, device_ts, status, detail, power_w"
)
try:  # the machines' snapshots, every flush: orjson encodes them ~5x faster
    import orjson

    def _dumps(value):
        return orjson.dumps(value).decode()

except ImportError:  # pragma: no cover - orjson is in requirements.txt
    _dumps = json.JSONEncoder(separators=(",", ":")).encode


def _insert_raw(env, rows):
    """COPY raw log rows (about twice as fast as a multi-row INSERT)."""
    if not rows:
        return
    limit = _max_payload(env)
    lines = []
    for conn_id, dev_id, company, msg, status, detail, ts, power in rows:
        payload = msg.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8", "replace")
        size = len(payload)
        text = payload[:limit].decode("utf-8", "replace").replace("\x00", "\ufffd")
        lines.append(
            "\t".join(
                (
                    str(conn_id),
                    _text(dev_id),
                    _text(company),
                    _text(msg.topic[:1000].replace("\x00", "\ufffd")),
                    _text(text),
                    str(size),
                    "t" if size > limit else "f",
                    str(msg.qos),
                    _stamp(msg.received_at),
                    _text(ts),
                    _text(status),
                    _text(detail[:250] if detail else None),
                    _text(power),
                )
            )
        )
    lines.append("")
    env.cr._obj.copy_expert(
        f"COPY mqtt_message ({_RAW_COLUMNS}) FROM STDIN", io.StringIO("\n".join(lines))
    )


def _write_quarantined(env, batch):
    """Quarantined machines: each of their frames an ``error`` row, the machine
    flagged; returns {connection id: frames} to count as errors."""
    errors: Counter[int] = Counter()
    if not batch.quarantined:
        return errors
    cr = env.cr
    cr.execute(
        "SELECT id, company_id FROM mqtt_device WHERE id IN %s",
        (tuple(batch.quarantined),),
    )
    company = dict(cr.fetchall())
    rows = []
    for conn_id, msg, dev_id in batch.acks:
        reason = batch.quarantined.get(dev_id)
        if reason is not None:
            errors[conn_id] += 1
            row = RawRow(conn_id, dev_id, company.get(dev_id), msg, "error", reason)
            rows.append(row)
    _insert_raw(env, rows)
    execute_values(
        cr._obj,
        "UPDATE mqtt_device AS d SET fault = v.reason "
        "FROM (VALUES %s) AS v(id, reason) WHERE d.id = v.id",
        sorted(batch.quarantined.items()),
        template="(%s, %s::varchar)",
    )
    return errors


def _wall(ts):
    return None if ts is None else to_utc(ts)


def _max_payload(env):
    value = env["ir.config_parameter"].sudo().get_param(PARAM_MAX_PAYLOAD)
    try:
        return max(64, int(value))
    except (TypeError, ValueError):
        return DEFAULT_MAX_PAYLOAD


_CONNECTION_UPDATE = """
UPDATE mqtt_connection SET
    stat_received = COALESCE(stat_received, 0) + %s,
    stat_readings = COALESCE(stat_readings, 0) + %s,
    stat_ignored = COALESCE(stat_ignored, 0) + %s,
    stat_rejected = COALESCE(stat_rejected, 0) + %s,
    stat_rate_limited = COALESCE(stat_rate_limited, 0) + %s,
    stat_unmatched = COALESCE(stat_unmatched, 0) + %s,
    stat_duplicates = COALESCE(stat_duplicates, 0) + %s,
    stat_stale = COALESCE(stat_stale, 0) + %s,
    stat_errors = COALESCE(stat_errors, 0) + %s,
    stat_clock_refused = COALESCE(stat_clock_refused, 0) + %s,
    heartbeat = (now() at time zone 'UTC'),
    owner_node = %s,
    state_since = CASE WHEN state IS DISTINCT FROM %s
        THEN (now() at time zone 'UTC') ELSE state_since END,
    state = %s,
    queue_depth = %s,
    last_error = %s,
    last_error_data = %s::jsonb,
    last_connected = COALESCE(%s, last_connected),
    committed_mids = %s
WHERE id = %s
"""
STAT_KEYS = (
    "received",
    "readings",
    "ignored",
    "rejected",
    "rate_limited",
    "unmatched",
    "duplicates",
    "stale",
    "errors",
    "clock_refused",
)


def _write_connections(cr, batch, errors):
    for conn_id, row in batch.connections.items():
        stats = batch.stats.get(conn_id, Counter()) + Counter(errors=errors[conn_id])
        cr.execute(
            _CONNECTION_UPDATE,
            (
                *(stats[key] for key in STAT_KEYS),
                row.node,
                row.state,
                row.state,
                row.queue_depth,
                _error_text(row.last_error),
                _error_data(row.last_error),
                _wall(row.connected_at),
                json.dumps(row.committed_mids),
                conn_id,
            ),
        )


def _error_text(error):
    return str(error)[:250] if error else None


def _error_data(error):
    """The message's template and values, to show it in the reader's language."""
    return _dumps(error.to_json()) if isinstance(error, Text) else None
