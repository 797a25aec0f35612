"""Write one batch of the bridge in ONE transaction (see DESIGN.md, "Data flow").

Raw log rows go in with one COPY, live device fields with one
UPDATE ... FROM (VALUES ...), sessions through the ORM (few, and their stored
computed fields matter), connection counters and the heartbeat with one
UPDATE per connection, guarded by the owner's fencing token: if another node
took the connection over, the whole batch is rolled back and dropped, so two
nodes never both commit the same readings. Bus notifications are queued on the
cursor and reach browsers only when the commit succeeds.
"""

import csv
import io
import json
from datetime import UTC, datetime

from psycopg2.extras import execute_values

from ..models.mqtt_message import DEFAULT_MAX_PAYLOAD, PARAM_MAX_PAYLOAD
from .bridge_core import MAX_DISCOVERED
from .mqtt_messages import Text

DEVICE_NOTIFICATION = "open_workshop_mqtt/devices"
MAX_NOTIFIED_IDS = 500


class LostOwnership(Exception):
    """Another runner holds the connection now: this batch must not land."""

    def __init__(self, connection_ids):
        super().__init__(f"connections taken over by another runner: {connection_ids}")
        self.connection_ids = connection_ids


def _wall(ts):
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None)


def write_batch(env, core, batch, connections, notify=None):
    """Write ``batch``; return {device id: running session id or None}.

    ``connections``: {connection id: runtime dict} with keys token, node,
    state, last_error, connected_at, mids (QoS 1 mids of this batch).
    ``notify``: device ids to announce to open browsers, or None.
    Raises LostOwnership when a fencing token no longer matches.
    """
    cr = env.cr
    _fence(cr, connections)
    _create_discovered(env, batch)
    session_ids = _write_sessions(env, core, batch)
    _write_devices(cr, core, batch, session_ids)
    _insert_raw(env, batch)
    _write_connections(cr, core, batch, connections)
    if notify:
        _notify_browsers(env, notify)
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
    lost = [cid for cid in ids if tokens.get(cid) != connections[cid]["token"]]
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
        Device.create(
            {
                "name": values["src"],
                "connection_id": conn_id,
                "company_id": connection.company_id.id,
                "topic_prefix": prefix,
                "parser_type": "shelly_gen2",
                "component": values["component"],
                "active": False,
                "discovery_state": "discovered",
            }
        )


def _write_sessions(env, core, batch):
    """Each device's SessionDetector writes its own session ops; the states of
    the sessions they touch are read in one query first."""
    result = {}
    touched = [
        core.devices[dev_id].session_id
        for dev_id in batch.session_ops
        if dev_id in core.devices and core.devices[dev_id].session_id
    ]
    running = set()
    if touched:
        env.cr.execute(
            "SELECT id FROM mqtt_session WHERE id IN %s AND state = 'running'",
            (tuple(touched),),
        )
        running = {row[0] for row in env.cr.fetchall()}
    for dev_id, ops in batch.session_ops.items():
        dev = core.devices.get(dev_id)
        if dev is not None:
            result[dev_id] = dev.detector.apply(env, ops, running)
    return result


_DEVICE_UPDATE = """
UPDATE mqtt_device AS d SET
    current_state = v.state,
    current_power_w = v.power,
    current_energy_wh = COALESCE(v.energy, d.current_energy_wh),
    last_message_time = COALESCE(v.last_msg, d.last_message_time),
    online = COALESCE(v.online, d.online),
    meter_error = v.err,
    rate_limited = v.rate_limited,
    detector_snapshot = v.dsnap,
    parser_snapshot = v.psnap,
    shelly_id = COALESCE(v.shelly_id, d.shelly_id),
    running_session_id = v.session_id
FROM (VALUES %s) AS v(id, state, power, energy, last_msg, online, err,
                      rate_limited, dsnap, psnap, shelly_id, session_id)
WHERE d.id = v.id
"""
_DEVICE_TEMPLATE = (
    "(%s, %s, %s::float8, %s::float8, %s::timestamp, %s::bool, %s::varchar, "
    "%s::bool, %s::jsonb, %s::jsonb, %s::varchar, %s::int4)"
)


def _write_devices(cr, core, batch, session_ids):
    rows = []
    for dev_id in batch.dirty:
        dev = core.devices.get(dev_id)
        if dev is None:
            continue
        live = dev.live_values()
        sid = session_ids.get(dev_id, dev.session_id)
        rows.append(
            (
                dev_id,
                live["current_state"],
                live["current_power_w"],
                live["current_energy_wh"],
                _wall(live["last_message_time"]),
                live["online"],
                live["meter_error"],
                live["rate_limited"],
                _dumps(live["detector_snapshot"]),
                _dumps(live["parser_snapshot"]) if live["parser_snapshot"] else None,
                live["shelly_id"],
                sid,
            )
        )
    if rows:
        rows.sort()  # a stable lock order: no deadlock between two writers
        execute_values(cr._obj, _DEVICE_UPDATE, rows, template=_DEVICE_TEMPLATE)


_RAW_COLUMNS = (
    "connection_id, device_id, company_id, topic, payload, payload_size, "
    "truncated, qos, received_at, device_ts, status, detail, power_w"
)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _insert_raw(env, batch):
    """COPY the raw log rows (about twice as fast as a multi-row INSERT)."""
    if not batch.raw_rows:
        return
    limit = _max_payload(env)
    buf = io.StringIO()
    out = csv.writer(buf)
    for conn_id, dev_id, company, msg, status, detail, ts, power in batch.raw_rows:
        payload = msg.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8", "replace")
        size = len(payload)
        text = payload[:limit].decode("utf-8", "replace").replace("\x00", "\ufffd")
        out.writerow(
            (
                conn_id,
                _null(dev_id),
                _null(company),
                msg.topic[:1000].replace("\x00", "\ufffd"),
                text,
                size,
                "t" if size > limit else "f",
                msg.qos,
                _wall(msg.received_at).isoformat(sep=" "),
                _null(ts),
                status,
                detail[:250] if detail else "",
                _null(power),
            )
        )
    buf.seek(0)
    env.cr._obj.copy_expert(
        f"COPY mqtt_message ({_RAW_COLUMNS}) FROM STDIN WITH (FORMAT csv)", buf
    )


def _null(value):
    """CSV for COPY: an unquoted empty field is NULL."""
    return "" if value is None else value


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
    heartbeat = (now() at time zone 'UTC'),
    owner_node = %s,
    state = %s,
    last_error = %s,
    last_error_data = %s::jsonb,
    last_connected = COALESCE(%s, last_connected),
    committed_mids = %s
WHERE id = %s
"""


def _write_connections(cr, core, batch, connections):
    for conn_id, rt in connections.items():
        stats = batch.stats.get(conn_id, {})
        mids = set(core.committed_mids(conn_id)) | set(rt.get("mids", ()))
        cr.execute(
            _CONNECTION_UPDATE,
            (
                stats.get("received", 0),
                stats.get("readings", 0),
                stats.get("ignored", 0),
                stats.get("rejected", 0),
                stats.get("rate_limited", 0),
                stats.get("unmatched", 0),
                stats.get("duplicates", 0),
                stats.get("stale", 0),
                rt["node"],
                rt["state"],
                _error_text(rt.get("last_error")),
                _error_data(rt.get("last_error")),
                _wall(rt.get("connected_at")),
                json.dumps(sorted(mids)),
                conn_id,
            ),
        )


def _error_text(error):
    return str(error)[:250] if error else None


def _error_data(error):
    """The message's template and values, to show it in the reader's language."""
    return _dumps(error.to_json()) if isinstance(error, Text) else None


def _notify_browsers(env, ids):
    group = env.ref("open_workshop_mqtt.group_user", raise_if_not_found=False)
    if not group:
        return
    payload = {"ids": ids if len(ids) <= MAX_NOTIFIED_IDS else []}
    env["bus.bus"]._sendone(group, DEVICE_NOTIFICATION, payload)
