#!/usr/bin/env python3
"""How fast a month of one machine's power history is recomputed.

    python3 bench/recompute.py [--days 30] [--rate 1.0]

Writes ``days`` of one machine's history at ``rate`` readings per second
(30 days at 1/s: 2.6 million readings; a noisy power that changes with
every reading, sessions of 20 minutes an hour) into a fresh database with
the addon, through the engine's own history tail (the runner's encoding,
chunks and snapshots), with the sessions the same state machine made; then
starts Odoo and runs the recompute wizard's preview over JSON-RPC step by
step, as the browser does, with the machine's own settings.  Prints the
storage per reading and the preview's time; the last line is JSON.
"""

import argparse
import json
import pathlib
import random
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import owm_harness as h  # noqa: E402
from harness_base import import_addon  # noqa: E402
from psycopg2 import Binary  # noqa: E402
from psycopg2.extras import execute_values  # noqa: E402

import_addon()
from open_workshop_mqtt.services.engine import history  # noqa: E402
from open_workshop_mqtt.services.engine.machine import (  # noqa: E402
    SessionStateMachine,
)
from open_workshop_mqtt.services.engine.timebase import to_utc  # noqa: E402
from open_workshop_mqtt.services.engine.types import (  # noqa: E402
    DetectorConfig,
    SessionClosed,
)

PREFIX = "shellypmminig3-0000000bec01"


def generate(days, rate, seed=11):
    """(chunks, tail bytes, closed sessions, readings) of one machine."""
    rnd = random.Random(seed)
    config = DetectorConfig()
    machine = SessionStateMachine(config)
    tail = history.HistoryTail(0, None)
    closed = []
    t0 = round(time.time() / 3600.0) * 3600.0 - days * 86400.0
    n = int(days * 86400 * rate)
    step = 1.0 / rate
    for k in range(n):
        ts = history.grid(t0 + k * step)
        minute = (k * step / 60.0) % 60.0
        if minute < 20.0:
            watts = history.grid(rnd.uniform(450.0, 700.0))
        elif minute < 22.0:
            watts = history.grid(rnd.uniform(30.0, 60.0))
        else:
            watts = history.grid(rnd.uniform(0.0, 4.0))
        snapshot = machine.snapshot() if tail.wants_snapshot(ts) else None
        for event in machine.feed(ts, watts):
            if type(event) is SessionClosed:
                closed.append(event.summary)
        tail.add(history.READ, ts, watts, None, snapshot)
    return tail.chunks, bytes(tail.data), closed, n


def store(dbname, dev_id, chunks, tail, closed):
    """The history and the sessions, as the runner would have written them."""
    with h.pg_connect(dbname) as cnx, cnx.cursor() as cur:
        cur.execute(
            "UPDATE mqtt_device SET history_tail = %s WHERE id = %s",
            (Binary(tail), dev_id),
        )
        execute_values(
            cur,
            "INSERT INTO mqtt_power_chunk "
            "(device_id, company_id, first_ts, last_ts, count, data) VALUES %s",
            [
                (dev_id, 1, c.first_ts, c.last_ts, c.count, Binary(c.data))
                for c in chunks
            ],
            page_size=500,
        )
        execute_values(
            cur,
            "INSERT INTO mqtt_session (device_id, company_id, start_ts, start_time,"
            " end_ts, end_time, last_update_ts, state, origin, standby_duration_s,"
            " working_duration_s, energy_wh, end_reason) VALUES %s",
            [
                (
                    dev_id,
                    1,
                    s.start_time,
                    to_utc(s.start_time),
                    s.end_time,
                    to_utc(s.end_time),
                    s.end_time,
                    "closed",
                    "power",
                    s.standby_duration_s,
                    s.working_duration_s,
                    s.energy_wh,
                    s.end_reason,
                )
                for s in closed
            ],
            page_size=1000,
        )
        cur.execute(
            "SELECT pg_total_relation_size('mqtt_power_chunk'), "
            "(SELECT length(history_tail) FROM mqtt_device WHERE id = %s)",
            (dev_id,),
        )
        return cur.fetchone()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=1.0, help="readings per second")
    args = p.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="owm-bench-rc-"))
    dbname = f"owm_bench_rc_{int(time.time())}"
    started = time.monotonic()
    chunks, tail, closed, readings = generate(args.days, args.rate)
    generated = time.monotonic() - started
    print(
        f"generated {readings:,} readings, {len(chunks):,} chunks, "
        f"{len(closed):,} sessions in {generated:.0f} s"
    )
    h.create_template(dbname, workdir / "install.log")
    server = None
    try:
        server = h.OdooServer(dbname, workdir, env={"ODOO_OWM_ENABLED": "0"}).start()
        rpc = server.rpc()
        conn_id = rpc(
            "mqtt.connection",
            "create",
            {"name": "Bench", "host": "127.0.0.1", "auto_start": False},
        )
        dev_id = rpc(
            "mqtt.device",
            "create",
            {"name": "Bench machine", "connection_id": conn_id, "topic_prefix": PREFIX},
        )
        table_bytes, tail_bytes = store(dbname, dev_id, chunks, tail, closed)
        per_reading = (table_bytes + tail_bytes) / readings
        print(f"history in the database: {per_reading:.2f} bytes per reading")
        params = rpc.search_read(
            "mqtt.device",
            [("id", "=", dev_id)],
            [
                "standby_threshold_w",
                "working_threshold_w",
                "start_debounce_s",
                "stop_debounce_s",
                "message_timeout_s",
            ],
        )[0]
        del params["id"]
        now = time.time()
        wizard = rpc(
            "mqtt.session.recompute",
            "create",
            dict(
                params,
                device_ids=[[6, 0, [dev_id]]],
                date_from=time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.gmtime(now - args.days * 86400 - 3600)
                ),
                date_to=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 3600)),
            ),
        )
        started = time.monotonic()
        steps = []
        while True:
            t = time.monotonic()
            step = rpc("mqtt.session.recompute", "action_preview_step", [wizard])
            steps.append(round(time.monotonic() - t, 2))
            if step["done"]:
                break
        preview_s = time.monotonic() - started
        (machine,) = rpc.search_read(
            "mqtt.session.recompute.machine",
            [("wizard_id", "=", wizard)],
            ["kept", "changed", "appearing", "vanishing", "left_alone"],
        )
        print(
            f"preview of {readings:,} readings: {preview_s:.1f} s in {len(steps)} "
            f"steps (longest {max(steps):.1f} s); sessions kept {machine['kept']} "
            f"of {len(closed)}, changed {machine['changed']}, new "
            f"{machine['appearing']}, gone {machine['vanishing']}"
        )
        print(
            json.dumps(
                {
                    "readings": readings,
                    "chunks": len(chunks),
                    "sessions": len(closed),
                    "bytes_per_reading": round(per_reading, 2),
                    "preview_s": round(preview_s, 1),
                    "steps": len(steps),
                    "longest_step_s": max(steps),
                    "kept": machine["kept"],
                    "changed": machine["changed"],
                    "appearing": machine["appearing"],
                    "vanishing": machine["vanishing"],
                    "readings_per_s": round(readings / preview_s),
                }
            )
        )
    finally:
        if server is not None:
            server.stop()
        h.drop_database(dbname)


if __name__ == "__main__":
    main()
