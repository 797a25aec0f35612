"""Benchmark of the pure path on one core: route + parse + detect, no Odoo.

    python3 bench/pure_path.py [--readings 200000] [--devices 100] [--repeat 3]

Two figures:
* ``parse+detect``: TopicRouter.match -> ShellyGen2Parser.parse ->
  SessionStateMachine.feed, the three pure pieces in a tight loop;
* ``engine``: the same through ``Engine.handle`` (what the runner's
  worker thread does per message: dedupe, rate cap, stats, events).
Frames are realistic NotifyStatus deltas (bytes, as paho hands them over) with
power cycling around the thresholds so sessions open and close.  Each figure
is the best of ``--repeat`` passes (fresh state each), because a shared
machine's noise only ever slows a pass down; ``calibration_loop_s`` (a fixed
pure-Python loop of 10 million additions) says how fast this machine runs
Python, so figures from different machines can be compared.
"""

import argparse
import json
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from harness_base import import_addon  # noqa: E402

import_addon()
from open_workshop_mqtt.parsers import ShellyGen2Parser, TopicRouter  # noqa: E402
from open_workshop_mqtt.services.engine.batch import Batch  # noqa: E402
from open_workshop_mqtt.services.engine.device import DeviceConfig  # noqa: E402
from open_workshop_mqtt.services.engine.engine import Engine  # noqa: E402
from open_workshop_mqtt.services.engine.machine import (  # noqa: E402
    SessionStateMachine,
)
from open_workshop_mqtt.services.engine.types import DetectorConfig  # noqa: E402
from open_workshop_mqtt.services.mqtt.inbound import InboundMessage  # noqa: E402

T0 = 1_790_000_000.0
POWERS = [0.0, 2.5, 35.0, 640.0, 655.5, 120.0, 30.0, 1.0]


def frames(devices, readings):
    """[(topic, payload bytes, device index, ts)] round-robin over devices."""
    out = []
    for i in range(readings):
        dev = i % devices
        n = i // devices
        prefix = f"shellypmminig3-{dev:012x}"
        power = POWERS[(n // 4) % len(POWERS)]
        ts = T0 + n * 2.0
        comp = {"id": 0, "apower": power, "current": round(power / 230.0, 3)}
        frame = {
            "src": prefix,
            "dst": f"{prefix}/events",
            "method": "NotifyStatus",
            "params": {"ts": round(ts, 2), "pm1:0": comp},
        }
        payload = json.dumps(frame, separators=(",", ":")).encode()
        out.append((f"{prefix}/events/rpc", payload, dev, ts))
    return out


def bench_pieces(data, devices):
    router = TopicRouter()
    parsers = []
    machines = []
    for dev in range(devices):
        prefix = f"shellypmminig3-{dev:012x}"
        parser = ShellyGen2Parser(prefix)
        for topic_filter in parser.subscriptions():
            router.add(topic_filter, dev)
        parsers.append(parser)
        machines.append(SessionStateMachine(DetectorConfig()))
    events = 0
    start = time.perf_counter()
    for topic, payload, _dev, ts in data:
        dev = router.match(topic)[0]
        reading = parsers[dev].parse(topic, payload, ts)
        events += len(
            machines[dev].feed(reading.ts, reading.power_w, reading.energy_wh)
        )
    elapsed = time.perf_counter() - start
    return len(data) / elapsed, events


def bench_core(data, devices):
    core = Engine()
    core.add_connection(1, "owm-bench", discovery=False)
    core.connection_up(1, session_present=False)
    batch = Batch()
    for dev in range(devices):
        core.upsert_device(
            DeviceConfig(
                id=dev + 1,
                name=f"Machine {dev}",
                connection_id=1,
                company_id=1,
                parser_type="shelly_gen2",
                topic_prefix=f"shellypmminig3-{dev:012x}",
                topic_pattern=None,
                component="pm1:0",
                detector=DetectorConfig(),
                poll_interval_s=0,
                max_msg_rate=1_000_000,
            ),
            batch,
        )
    msgs = [
        InboundMessage(topic, payload, 1, i % 65535 + 1, False, False, ts, 1)
        for i, (topic, payload, _dev, ts) in enumerate(data)
    ]
    batch = Batch()
    start = time.perf_counter()
    for i, msg in enumerate(msgs):
        core.handle(1, msg, batch)
        if i % 2000 == 1999:  # what a flush does to the batch
            batch = Batch()
    elapsed = time.perf_counter() - start
    return len(msgs) / elapsed


def calibration_loop_s():
    """Seconds for 10 million additions in a plain loop (best of 3)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="passes; best counts")
    args = parser.parse_args()
    data = frames(args.devices, args.readings)
    pieces = [bench_pieces(data, args.devices) for _ in range(max(1, args.repeat))]
    pieces_rate, events = max(pieces)
    core_rate = max(bench_core(data, args.devices) for _ in range(max(1, args.repeat)))
    calibration = calibration_loop_s()
    print(
        f"readings: {args.readings:,} over {args.devices} devices ({events:,} events)"
    )
    print(f"parse+detect (router, parser, machine): {pieces_rate:,.0f} readings/s")
    print(f"engine (Engine.handle):                 {core_rate:,.0f} readings/s")
    print(f"calibration (10M additions):            {calibration:.2f} s")
    print(
        json.dumps(
            {
                "pure_readings_per_s": round(pieces_rate),
                "engine_readings_per_s": round(core_rate),
                "calibration_loop_s": round(calibration, 3),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
