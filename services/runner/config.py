"""Read what the runner needs from the database, as primitives.

Called with a fresh superuser environment inside a short transaction; nothing
returned here refers to a record or a cursor, so the worker thread can keep it.
"""

import json
from dataclasses import dataclass, replace
from functools import lru_cache

from odoo.tools import SQL

from ...models.mqtt_device import RUNNER_FIELDS
from ...parsers import meter_kind
from ..engine.device import DeviceConfig
from ..engine.timebase import from_utc
from ..engine.types import DETECTOR_PARAMS, DetectorConfig
from ..mqtt.connect import ClientSettings

# What the runner reacts to; what it needs to resume a machine (its stored
# state) is read apart (``_stored_state``), only for the machines that need it.
DEVICE_FIELDS = sorted(RUNNER_FIELDS - {"active"}) + ["name", "company_id"]


@dataclass(frozen=True)
class ConnectionInfo:
    """What the runner needs of one broker connection (primitives only)."""

    name: str
    desired: bool  # a runner should consume it (active, started, usable)
    settings: ClientSettings | None
    settings_error: str | None
    discovery: bool
    committed_mids: list[int]
    company_id: int | None
    heartbeat: float | None  # the last runner's, as a timestamp
    discovered_waiting: int
    restart_count: int


def load_connections(env) -> dict[int, ConnectionInfo]:
    """{id: ConnectionInfo} for every connection."""
    out = {}
    conns = env["mqtt.connection"].sudo().with_context(active_test=False).search([])
    waiting = dict(
        env["mqtt.device"]
        .sudo()
        .with_context(active_test=False)
        ._read_group(
            [("discovery_state", "=", "discovered")], ["connection_id"], ["__count"]
        )
    )
    for conn in conns:
        settings: ClientSettings | None = None
        error: str | None = None
        try:
            settings = ClientSettings(**conn._client_settings_values())
        except (TypeError, ValueError, UnicodeDecodeError) as exc:
            error = f"Invalid settings: {exc}"
        out[conn.id] = ConnectionInfo(
            name=conn.name,
            desired=bool(conn.active and conn.run_requested and settings),
            settings=settings,
            settings_error=error,
            discovery=conn.discovery_enabled,
            committed_mids=_mids(conn.committed_mids),
            company_id=conn.company_id.id or None,
            heartbeat=from_utc(conn.heartbeat) if conn.heartbeat else None,
            discovered_waiting=waiting.get(conn, 0),
            restart_count=conn.restart_count,
        )
    return out


def _mids(text):
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [m for m in value if isinstance(m, int)] if isinstance(value, list) else []


def load_devices(env, connection_ids, needs_state=None):
    """[DeviceConfig] of the active devices on the given connections.

    ``needs_state(cfg)``: whether the machine's stored state (its snapshots
    and history tail) is read into its config; a machine the engine holds
    already goes on from its own, and reading every machine's at every
    reconcile cost the runner most of the reconcile (1,000 machines: 2 kB of
    JSON and history each).  None: read for every machine."""
    if not connection_ids:
        return []
    env.flush_all()  # read in SQL below: what this transaction wrote first
    rows = _read_devices(env, connection_ids)
    env.cr.execute(
        "SELECT device_id, id, start_ts FROM mqtt_session "
        "WHERE device_id = ANY(%s) AND state = 'running'",
        ([r["id"] for r in rows],),
    )
    running = {device_id: (sid, start) for device_id, sid, start in env.cr.fetchall()}
    configs = []
    for r in rows:
        try:
            detector = _detector(tuple(r[name] for name in DETECTOR_PARAMS))
        except ValueError:
            continue  # the model's constraints make this unreachable; be safe
        session = running.get(r["id"])
        configs.append(
            DeviceConfig(
                id=r["id"],
                name=r["name"],
                connection_id=r["connection_id"],
                company_id=r["company_id"],
                parser_type=r["parser_type"],
                topic_prefix=r["topic_prefix"] or None,
                topic_pattern=r["topic_pattern"] or None,
                component=r["component"] or None,
                detector=detector,
                options={
                    name: r[name] or None
                    for _option, name in meter_kind(r["parser_type"]).option_fields
                },
                poll_interval_s=r["poll_interval_s"],
                log_raw=r["log_raw"],
                max_msg_rate=r["max_msg_rate"],
                running_session_id=session[0] if session else None,
                running_start_ts=session[1] if session else None,
            )
        )
    wanted = [c.id for c in configs if needs_state is None or needs_state(c)]
    state = _stored_state(env.cr, wanted)
    return [replace(c, **state[c.id]) if c.id in state else c for c in configs]


def _read_devices(env, connection_ids):
    """The active machines' DEVICE_FIELDS, as dicts, in the model's order.

    The model's own search (its domain and order), its rows read as the
    database gives them: search_read's conversion of every field of every
    record cost 31 of a reconcile's 53 ms of CPU with 1,000 machines.
    Many-to-ones come as ids (None when empty), empty numbers and flags as
    the ORM reads them (0, False)."""
    Device = env["mqtt.device"].sudo()
    query = Device._search(
        [("connection_id", "in", list(connection_ids)), ("active", "=", True)],
        order=Device._order,
    )
    names = ["id", *DEVICE_FIELDS]
    rows = env.execute_query(
        query.select(*(SQL.identifier(Device._table, name) for name in names))
    )
    read = [_AS_READ.get(Device._fields[name].type, _same) for name in names]
    return [
        {name: conv(value) for name, conv, value in zip(names, read, row, strict=True)}
        for row in rows
    ]


def _same(value):
    return value


_AS_READ = {
    "float": lambda value: float(value or 0.0),
    "integer": lambda value: int(value or 0),
    "boolean": bool,
}


@lru_cache(maxsize=1024)
def _detector(values: tuple) -> DetectorConfig:
    """One DetectorConfig per distinct set of parameters (checked once, not
    for every machine at every reconcile; frozen, so shared safely)."""
    return DetectorConfig(**dict(zip(DETECTOR_PARAMS, values, strict=True)))


def _stored_state(cr, device_ids):
    """{machine id: its stored snapshots and history tail, as DeviceConfig
    fields} (the tail as raw bytes: no base64 round trip)."""
    if not device_ids:
        return {}
    cr.execute(
        "SELECT id, detector_snapshot, parser_snapshot, history_tail "
        "FROM mqtt_device WHERE id IN %s",
        (tuple(device_ids),),
    )
    return {
        dev_id: {
            "detector_snapshot": dsnap or None,
            "parser_snapshot": psnap or None,
            "history_tail": None if tail is None else bytes(tail),
        }
        for dev_id, dsnap, psnap, tail in cr.fetchall()
    }
