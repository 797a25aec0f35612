"""Reference 1, the physical limit: no Odoo at all.

A bare paho subscriber (MQTT 5, QoS 1, manual acks) puts every message on a
queue; one writer thread takes batches (up to ``max_batch`` or ``flush_s``),
parses the frame (JSON: ts, apower), inserts them with one
``psycopg2.extras.execute_values`` into a plain table, commits, and only then
acknowledges them (the same delivery guarantee as the runner).

Run by bench/ingest.py as ``python3 bench/ref_raw.py '<json spec>'``: prints
``READY`` once subscribed, then runs until SIGTERM and prints one JSON line.
"""

import json
import queue
import signal
import sys
import threading
import time
from datetime import datetime, timezone

import psycopg2
from loadgen import _die_with_parent
from psycopg2.extras import execute_values

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id bigserial PRIMARY KEY,
    device_id integer,
    topic varchar,
    payload text,
    qos integer,
    received_at timestamp,
    device_ts double precision,
    power_w double precision
)
"""


def main():
    _die_with_parent()
    spec = json.loads(sys.argv[1])
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    table = spec["table"]
    devices = {f"{p}/events/rpc": i + 1 for i, p in enumerate(spec["prefixes"])}
    cnx = psycopg2.connect(dbname=spec["dbname"], application_name="owm-bench-raw")
    with cnx.cursor() as cur:
        cur.execute(TABLE_DDL.format(table=table))
    cnx.commit()
    inbox = queue.Queue()
    stop = threading.Event()
    subscribed = threading.Event()
    stats = {"received": 0, "written": 0, "flushes": 0, "errors": 0}

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(spec.get("filter", "+/events/rpc"), qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        stats["received"] += 1
        inbox.put((message.topic, message.payload, message.mid, time.time()))

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=spec["client_id"],
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 65535
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(
        "127.0.0.1", spec["port"], keepalive=30, clean_start=True, properties=props
    )
    client.loop_start()

    def writer():
        max_batch = spec.get("max_batch", 5000)
        flush_s = spec.get("flush_s", 0.1)
        insert = (
            f"INSERT INTO {table} (device_id, topic, payload, qos, received_at, "
            "device_ts, power_w) VALUES %s"
        )
        while not stop.is_set():
            try:
                first = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            until = time.monotonic() + flush_s
            while len(batch) < max_batch:
                left = until - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(inbox.get(timeout=left))
                except queue.Empty:
                    break
            rows = []
            for topic, payload, _mid, received in batch:
                try:
                    frame = json.loads(payload)
                    params = frame["params"]
                    ts = params["ts"]
                    power = params["pm1:0"].get("apower")
                except (ValueError, KeyError, TypeError):
                    ts = power = None
                rows.append(
                    (
                        devices.get(topic),
                        topic,
                        payload.decode("utf-8", "replace"),
                        1,
                        datetime.fromtimestamp(received, timezone.utc).replace(
                            tzinfo=None
                        ),
                        ts,
                        power,
                    )
                )
            try:
                with cnx.cursor() as cur:
                    execute_values(cur, insert, rows, page_size=1000)
                cnx.commit()
            except psycopg2.Error:
                stats["errors"] += 1
                cnx.rollback()
                continue  # not acked: the broker redelivers on reconnect
            for _topic, _payload, mid, _received in batch:
                client.ack(mid, 1)
            stats["written"] += len(rows)
            stats["flushes"] += 1

    thread = threading.Thread(target=writer, name="writer", daemon=True)
    thread.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not subscribed.wait(10):
        raise SystemExit("ref_raw: no SUBACK within 10 s")
    print("READY", flush=True)
    while not stop.wait(0.5):
        pass
    thread.join(5)
    client.loop_stop()
    client.disconnect()
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
