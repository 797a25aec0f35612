#!/usr/bin/env python3
"""Give a demo database a few weeks of machine history (run.sh does it once).

    python3 tools/demo_history.py [--url URL] [--db owm_demo] [--days 14]

For every machine of the demo broker and every past day, the simulator plays
the machine through opening hours (09:00-21:00, closed on Sundays) -- its
frames plus the poll replies the runner would get every 10 s -- our parser
reads them and the engine's state machine turns them into sessions, exactly
as the live runner would: the sessions are created over JSON-RPC, the power
history (the runner's own encoding, sealed chunks) is written to the
database directly, so power curves and recomputing work on the demo too.
"""

import argparse
import datetime as dt
import itertools
import json
import pathlib
import sys
import urllib.request
import zoneinfo

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from harness_base import import_addon  # noqa: E402
from shelly_sim import make_meter  # noqa: E402

import_addon()
from open_workshop_mqtt.parsers import (  # noqa: E402
    ParseError,
    make_parser,
    poll_request,
)
from open_workshop_mqtt.services.engine import history  # noqa: E402
from open_workshop_mqtt.services.engine.machine import (  # noqa: E402
    SessionStateMachine,
)
from open_workshop_mqtt.services.engine.timebase import to_utc  # noqa: E402
from open_workshop_mqtt.services.engine.types import (  # noqa: E402
    DETECTOR_PARAMS,
    DetectorConfig,
    SessionClosed,
)

PROFILES = {
    "laser": "laser",
    "saw": "saw",
    "printer": "printer",
    "compressor": "compressor",
}
OPEN_H, CLOSE_H = 9, 21
POLL_S = 10.0
_ids = itertools.count(1)


class Rpc:
    def __init__(self, url, db, login, password):
        self.url = f"{url}/jsonrpc"
        self.db = db
        self.password = password
        self.uid = self.call("common", "login", db, login, password)

    def call(self, service, method, *args):
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"service": service, "method": method, "args": args},
                "id": next(_ids),
            }
        ).encode()
        req = urllib.request.Request(
            self.url, body, {"Content-Type": "application/json"}
        )
        reply = json.loads(urllib.request.urlopen(req, timeout=120).read())
        if reply.get("error"):
            raise SystemExit(reply["error"]["data"]["message"])
        return reply["result"]

    def __call__(self, model, method, *args, **kw):
        return self.call(
            "object",
            "execute_kw",
            self.db,
            self.uid,
            self.password,
            model,
            method,
            list(args),
            kw,
        )


def day_readings(device, profile, start_ts, seconds, seed):
    """(ts, power, energy) the runner would read during one opening day."""
    meter = make_meter(
        device["shelly_id"],
        profile,
        device["topic_prefix"],
        seed=seed,
        start_ts=start_ts,
        schedule="quiet",
        sample_s=5.0,
    )
    component = device["component"] or "pm1:0"
    parser = make_parser(
        "shelly_gen2", prefix=device["topic_prefix"], component=component
    )
    _topic, poll = poll_request(component, 1, "owm-demo")
    out = []
    t = 0.0
    while t < seconds:
        t = min(seconds, t + POLL_S)
        frames = list(meter.frames(t))
        answer = meter.reply(poll, at=t)
        if answer is not None:
            frames.append(answer)
        for frame in frames:
            try:
                reading = parser.parse(frame.topic, frame.payload, frame.device_ts)
            except ParseError:
                continue
            if reading.power_w is not None:
                out.append((reading.ts, reading.power_w, reading.energy_wh))
    return out


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--url", default="http://127.0.0.1:8069")
    args.add_argument("--db", default="owm_demo")
    args.add_argument("--login", default="admin")
    args.add_argument("--password", default="admin")
    args.add_argument("--days", type=int, default=14)
    args.add_argument("--tz", default="Europe/Berlin")
    opts = args.parse_args()
    rpc = Rpc(opts.url, opts.db, opts.login, opts.password)
    if rpc("mqtt.session", "search_count", [("end_reason", "!=", False)]) > 50:
        print("demo history: the database has sessions already; nothing to do")
        return
    tz = zoneinfo.ZoneInfo(opts.tz)
    fields = ["name", "machine_type", "topic_prefix", "component", "company_id"]
    fields += DETECTOR_PARAMS
    devices = rpc(
        "mqtt.device", "search_read", [("parser_type", "=", "shelly_gen2")], fields
    )
    today = dt.datetime.now(tz).date()
    created = 0
    for n, device in enumerate(devices):
        model, profile = "shellypmminig3", PROFILES.get(device["machine_type"], "laser")
        if (device["component"] or "").startswith("em:"):
            model, profile = "shellypro3em", "saw3"  # three-phase
        device["shelly_id"] = f"{model}-{0xD0CA5E000100 + n:012x}"
        config = DetectorConfig(**{k: device[k] for k in DETECTOR_PARAMS})
        machine = SessionStateMachine(config)
        tail = history.HistoryTail(device["id"], device["company_id"][0])
        closed = []
        for back in range(opts.days, 0, -1):
            day = today - dt.timedelta(days=back)
            if day.weekday() == 6:
                continue  # closed on Sundays
            opening = dt.datetime.combine(day, dt.time(OPEN_H), tz).timestamp()
            seconds = (CLOSE_H - OPEN_H) * 3600.0
            readings = day_readings(
                device, profile, opening, seconds, seed=back * 31 + n
            )
            for ts, power, energy in readings:
                closed.extend(feed(machine, tail, ts, power, energy))
            # After closing time the meter is silent: what the watchdog fires.
            end = history.grid(opening + seconds + config.message_timeout_s + 1)
            closed.extend(feed(machine, tail, end))
        tail.seal()
        vals = [session_values(device["id"], s) for s in closed]
        if vals:
            rpc("mqtt.session", "create", vals)
        store_history(opts.db, tail.chunks)
        created += len(vals)
        print(
            f"demo history: {device['name']}: {len(vals)} sessions, "
            f"{sum(c.count for c in tail.chunks):,} history records"
        )
    print(f"demo history: {created} sessions over {opts.days} days")
    count_into_maintenance(rpc)


def count_into_maintenance(rpc):
    """With the maintenance bridge: the equipment's meters count the imported
    sessions (an import is no close), and the plans they made due open their
    requests."""
    if not rpc("ir.model", "search_count", [("model", "=", "mqtt.maintenance.plan")]):
        return
    equipment = rpc(
        "maintenance.equipment", "search", [("mqtt_device_id", "!=", False)]
    )
    if equipment:
        rpc("maintenance.equipment", "action_recount_meters", equipment)
    plans = rpc("mqtt.maintenance.plan", "search", [])
    if plans:
        rpc("mqtt.maintenance.plan", "action_check_now", plans)
    print(
        f"demo history: {len(equipment)} equipment counted, {len(plans)} plans checked"
    )


def feed(machine, tail, ts, power=None, energy=None):
    """One input, as the runner's engine gives it (a reading, or a tick when
    ``power`` is None); returns the sessions it closed."""
    ts = history.grid(ts)
    snapshot = machine.snapshot() if tail.wants_snapshot(ts) else None
    if power is None:
        events = machine.tick(ts)
        if events:
            tail.add(history.TICK, ts, None, None, snapshot)
    else:
        before = machine.last_ts
        power = history.grid(power)
        energy = None if energy is None else history.grid(energy)
        events = machine.feed(ts, power, energy)
        if machine.last_ts != before:
            tail.add(history.READ, ts, power, energy, snapshot)
    return [e.summary for e in events if type(e) is SessionClosed]


def session_values(device_id, s):
    return {
        "device_id": device_id,
        "start_ts": s.start_time,
        "start_time": _utc(s.start_time),
        "end_ts": s.end_time,
        "end_time": _utc(s.end_time),
        "last_update_ts": s.end_time,
        "state": "closed",
        "standby_duration_s": s.standby_duration_s,
        "working_duration_s": s.working_duration_s,
        "energy_wh": s.energy_wh,
        "end_reason": s.end_reason,
    }


def store_history(dbname, chunks):
    """The sealed chunks, straight into the database (the runner's table)."""
    import psycopg2
    from psycopg2.extras import execute_values

    with psycopg2.connect(dbname=dbname) as cnx, cnx.cursor() as cur:
        execute_values(
            cur,
            history.INSERT_CHUNKS,
            history.chunk_rows(chunks, psycopg2.Binary),
            template=history.CHUNK_TEMPLATE,
        )


def _utc(ts):
    return to_utc(ts).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    main()
