#!/usr/bin/env python3
"""Shelly meter fleet simulator: realistic, repeatable MQTT meter traffic.

Each virtual meter (device id ``shellypmminig3-<12 hex>``, component ``pm1:0``;
a ``shellypro3em-<12 hex>`` is a three-phase Pro 3EM on ``em:0``, see
shelly_meter_3em.py) plays a machine profile (see shelly_profiles.py) and
speaks the firmware's MQTT dialect (tests/fixtures/shelly_captures/README.md
has the facts):

- ``<prefix>/online``: ``true`` after connect; ``false`` is its Last Will.
- ``<prefix>/events/rpc``: a ``NotifyFullStatus`` after connect, then
  ``NotifyStatus`` deltas with only the changed ``pm1:0`` fields.  Power is
  reported when it moved from the last reported value by >= 5 % and >= 1 W
  (voltage and current ride along when they changed); once per simulated
  minute an energy-only delta: ``aenergy.total`` (Wh), ``by_minute`` (mWh:
  [0] the current partial minute, [1] and [2] the two whole minutes before)
  and ``minute_ts`` (start of the current minute).
- ``<prefix>/status/pm1:0``: the full status after every NotifyStatus, when
  "generic status update" is on (``--status-topic``; off by default).
- ``<prefix>/rpc``: answers ``PM1.GetStatus`` (and ``Shelly.GetStatus``) on
  ``<request src>/rpc`` at QoS 1; any other method gets error 404.

Physics: the power is sampled once per simulated second and held in between;
``aenergy.total`` is the exact integral of those samples, so the counter
agrees with the power stream (within the 5 % reporting tolerance).  Voltage
is ~230 V with slow noise and a small sag under load, current = P / V,
``freq`` 50.0.

Time and repeatability: ``--speed 10`` plays 10 simulated seconds per wall
second; the device clock (``params.ts``) starts at ``--start-ts`` (default:
now) and advances by simulated time.  Every frame is computed in simulated
time from ``--seed`` alone, so the same seed and start time give the same
frames at any speed and whatever the wall-clock jitter (poll replies and the
re-announcement after a reconnect are answers to the outside world: they are
extra frames, they never change the others).

Stopping: SIGINT/SIGTERM (or ``Fleet.stop``) publishes nothing more and
disconnects cleanly within 4 s at most.  A clean MQTT disconnect does NOT fire the
Last Will: the broker keeps the retained ``online`` = ``true``.  To have the
bridge see a meter go offline, use ``Fleet.cut_power(device_id)`` (drops the
connection without DISCONNECT, as a power cut does) or clear the retained
flag: ``mosquitto_pub -t <prefix>/online -r -m false``.

Clients: up to 20 meters (or with ``--per-meter-clients``) each meter has its
own MQTT client (client id = device id, Last Will, one paho network thread
each).  Larger fleets share ONE client for publishing and polls: no
per-meter Last Will then (a connection has a single will), which keeps
1,000 meters in one process.

Usage::

    python3 tools/shelly_sim.py --devices laser:shellypmminig3-d0ca5e000001,\\
saw3:shellypro3em-d0ca5e000004 --speed 10
    python3 tools/shelly_sim.py --count 1000 --profile mixed --speed 20 --qos 0
    python3 tools/shelly_sim.py --count 4 --dump 3600 --start-ts 1767225600 > f.jsonl

Library::

    fleet = Fleet("127.0.0.1", 1883, meters=["laser:shellypmminig3-d0ca5e000001"],
                  speed=10, seed=1, qos=1).start()
    ...; fleet.stop(); fleet.stats
    for topic, payload, device_ts in Meter("shellypmminig3-d0ca5e000001", "saw",
                                           seed=1, start_ts=1767225600.0).frames(1800):
        ...

Modules: shelly_meter.py (``Meter``, frames and physics), shelly_fleet.py
(``Fleet``, MQTT clients, meter specs), shelly_profiles.py (machine
profiles); this one is the command line and re-exports their API.
"""

import argparse
import heapq
import json
import os
import signal
import sys
import threading
import time

try:
    from shelly_fleet import (
        PER_METER_CLIENTS_MAX,
        Fleet,
        _make_meter,
        fleet_specs,
        parse_devices,
    )
    from shelly_meter import DEVICE_ID, KINDS, MODEL, Frame, Meter
    from shelly_meter_3em import ThreePhaseMeter, make_meter
    from shelly_profiles import PROFILES, SCHEDULES
except ModuleNotFoundError:  # imported as tools.shelly_sim
    from tools.shelly_fleet import (
        PER_METER_CLIENTS_MAX,
        Fleet,
        _make_meter,
        fleet_specs,
        parse_devices,
    )
    from tools.shelly_meter import DEVICE_ID, KINDS, MODEL, Frame, Meter
    from tools.shelly_meter_3em import ThreePhaseMeter, make_meter
    from tools.shelly_profiles import PROFILES, SCHEDULES

__all__ = [
    "DEMO",
    "DEVICE_ID",
    "KINDS",
    "MODEL",
    "Fleet",
    "Frame",
    "Meter",
    "ThreePhaseMeter",
    "build_parser",
    "dump",
    "fleet_specs",
    "main",
    "make_meter",
    "parse_devices",
    "summary",
]

DEMO = (
    ("laser", "shellypmminig3-d0ca5e000001"),
    ("saw", "shellypmminig3-d0ca5e000002"),
    ("printer", "shellypmminig3-d0ca5e000003"),
    ("saw3", "shellypro3em-d0ca5e000004"),
)


# -- command line ---------------------------------------------------------------
def summary(stats: dict) -> str:
    """The one-line exit summary."""
    kinds = ", ".join(f"{kind} {n}" for kind, n in stats["frames"].items())
    return (
        f"shelly_sim: {stats['meters']} meters, {stats['clients']} client(s), "
        f"{stats['wall_s']:.1f} s wall = {stats['sim_s']:.1f} s simulated "
        f"(x{stats['speed']:g}): {stats['published']} frames published ({kinds}); "
        f"unsent {stats['unsent']}, max lag {stats['max_lag_s']:.3f} s"
    )


def dump(meters: list[Meter], until_sim_s: float, out) -> int:
    """Write every frame of ``until_sim_s`` simulated seconds as JSON lines
    ``{"ts", "topic", "payload"}``, all meters merged in device-time order."""
    count = 0
    streams = [meter.frames(until_sim_s) for meter in meters]
    for frame in heapq.merge(*streams, key=lambda frame: frame.device_ts):
        line = {"ts": frame.device_ts, "topic": frame.topic, "payload": frame.payload}
        out.write(json.dumps(line) + "\n")
        count += 1
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shelly_sim.py",
        description="Simulate Shelly power meters (PM Mini Gen3, Pro 3EM) on a broker.",
        epilog=(
            "Without --devices or --count it plays the demo workshop: "
            + ", ".join(f"{p}:{d}" for p, d in DEMO)
            + ". SIGINT/SIGTERM stop it cleanly (exit 0; a clean disconnect does "
            "not fire the Last Will, the retained online=true stays)."
        ),
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=1883)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--devices",
        help=f"profile:device_id[:prefix],... (profiles: {', '.join(PROFILES)})",
    )
    which.add_argument("--count", type=int, help="a fleet of N meters")
    add("--profile", default="mixed", choices=["mixed", *PROFILES], help="for --count")
    add("--prefix-base", default=f"{MODEL}-", help="--count: prefix = base + MAC")
    add("--first-mac", default="d0ca5e000001", help="--count: MAC of the first meter")
    add(
        "--schedule",
        default="busy",
        choices=SCHEDULES,
        help="busy: first session within 20 s, short gaps (demo); quiet: a workday",
    )
    add("--speed", type=float, default=1.0, help="simulated seconds per wall second")
    add("--seed", type=int, default=1, help="same seed and --start-ts: same frames")
    add("--start-ts", type=float, help="device clock at the start (default: now)")
    add("--duration", type=float, help="wall seconds to run (default: forever)")
    add("--qos", type=int, default=1, choices=(0, 1), help="for telemetry frames")
    add("--status-topic", action="store_true", help="publish <prefix>/status/pm1:0")
    add("--no-retain", action="store_true", help="online and Last Will not retained")
    clients = parser.add_mutually_exclusive_group()
    clients.add_argument(
        "--per-meter-clients",
        dest="per_meter",
        action="store_const",
        const=True,
        help=f"one MQTT client per meter (default up to {PER_METER_CLIENTS_MAX})",
    )
    clients.add_argument(
        "--shared-client",
        dest="per_meter",
        action="store_const",
        const=False,
        help="one MQTT client for all meters (no per-meter Last Will)",
    )
    add("--connect-timeout", type=float, default=10.0, help="s (default 10)")
    add("--username")
    add("--password", help="or set SHELLY_SIM_PASSWORD")
    add("--dump", type=float, metavar="SIM_S", help="no MQTT: print JSON lines")
    add("--verbose", "-v", action="store_true", help="print every frame")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.count is not None:
            if args.count < 1:
                raise ValueError("--count must be >= 1")
            specs = fleet_specs(
                args.count, args.profile, args.prefix_base, args.first_mac
            )
        elif args.devices:
            specs = parse_devices(args.devices)
        else:
            specs = list(DEMO)
        if not args.speed > 0:
            raise ValueError("--speed must be > 0")
        meters = [
            _make_meter(spec, args.seed, args.schedule, args.status_topic)
            for spec in specs
        ]
    except ValueError as exc:
        parser.error(str(exc))
    if args.dump is not None:
        for meter in meters:
            meter.start_ts = args.start_ts
        try:
            count = dump(meters, args.dump, sys.stdout)
        except BrokenPipeError:  # e.g. piped into `head`: the reader has enough
            sys.stdout = None  # nothing more to flush at exit
            return 0
        print(f"shelly_sim: {count} frames", file=sys.stderr)
        return 0
    fleet = Fleet(
        args.host,
        args.port,
        meters,
        args.speed,
        qos=args.qos,
        retain=not args.no_retain,
        per_meter_clients=args.per_meter,
        start_ts=args.start_ts,
        connect_timeout=args.connect_timeout,
        username=args.username,
        password=args.password or os.environ.get("SHELLY_SIM_PASSWORD"),
        verbose=args.verbose,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        fleet.start()
    except ConnectionError as exc:
        print(f"shelly_sim: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(f"{m.profile.name}:{m.prefix}" for m in meters[:4])
    more = f" and {len(meters) - 4} more" if len(meters) > 4 else ""
    print(
        f"shelly_sim: {names}{more} on {args.host}:{args.port}, x{args.speed:g}, "
        f"seed {args.seed}, start ts {fleet.start_ts:.2f}; Ctrl-C stops",
        flush=True,
    )
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not stop.is_set():
        left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if left <= 0:
            break
        stop.wait(left)
    fleet.stop()
    print(summary(fleet.stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
