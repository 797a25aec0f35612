"""Reference 2, the naive design of the seeds: one ORM create + commit per message.

A paho subscriber (MQTT 5, QoS 1) whose ``on_message`` callback, for every
message, opens a fresh Odoo cursor (``Registry(db).cursor()``), does ONE
``env['mqtt.message'].create({...})`` and commits; paho acknowledges the
message when the callback returns.  It runs in a process that imports Odoo
with the same addons path and configuration as the benchmark's servers.

Run by bench/ingest.py as ``python3 bench/ref_naive.py '<json spec>'``: prints
``READY`` once subscribed, then runs until SIGTERM and prints one JSON line.
"""

import json
import signal
import sys
import threading
import time
from datetime import datetime, timezone

from loadgen import _die_with_parent

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import config


def main():
    _die_with_parent()
    spec = json.loads(sys.argv[1])
    dbname = spec["dbname"]
    config.parse_config(
        [
            "-d",
            dbname,
            f"--addons-path={spec['addons_path']}",
            "--log-level=warn",
            f"--logfile={spec['logfile']}",
            "--max-cron-threads=0",
        ]
    )
    odoo.netsvc.init_logger()
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    with Registry(dbname).cursor() as cr:
        cr.execute(
            "SELECT id, topic_prefix, connection_id, company_id FROM mqtt_device "
            "WHERE topic_prefix = ANY(%s)",
            (list(spec["prefixes"]),),
        )
        devices = {f"{p}/events/rpc": (i, c, co) for i, p, c, co in cr.fetchall()}
    stop = threading.Event()
    subscribed = threading.Event()
    stats = {"written": 0, "errors": 0}

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(spec.get("filter", "+/events/rpc"), qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        received = time.time()
        device_id, conn_id, company_id = devices.get(message.topic, (None,) * 3)
        try:
            frame = json.loads(message.payload)
            params = frame["params"]
            ts = params["ts"]
            power = params["pm1:0"].get("apower")
            status = "reading"
        except (ValueError, KeyError, TypeError):
            ts = power = None
            status = "rejected"
        try:
            with Registry(dbname).cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["mqtt.message"].create(
                    {
                        "connection_id": conn_id,
                        "device_id": device_id,
                        "company_id": company_id,
                        "topic": message.topic,
                        "payload": message.payload.decode("utf-8", "replace"),
                        "payload_size": len(message.payload),
                        "truncated": False,
                        "qos": message.qos,
                        "received_at": datetime.fromtimestamp(
                            received, timezone.utc
                        ).replace(tzinfo=None),
                        "device_ts": ts,
                        "status": status,
                        "power_w": power,
                    }
                )
            stats["written"] += 1
        except Exception:  # the seed design logged and went on
            stats["errors"] += 1

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=spec["client_id"],
        protocol=mqtt.MQTTv5,
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
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not subscribed.wait(10):
        raise SystemExit("ref_naive: no SUBACK within 10 s")
    print("READY", flush=True)
    while not stop.wait(0.5):
        pass
    client.loop_stop()
    client.disconnect()
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
