#!/usr/bin/env python3
"""Ingest benchmark: Shelly frames -> Mosquitto -> the runner inside Odoo -> PostgreSQL.

One command, side by side in one run, same broker, same PostgreSQL:

* the Odoo runner in a real Odoo 18 server with the addon server-wide,
  threaded, then prefork (``--workers 2``), rate steps (default 1000, 2000,
  5000, 8000 /s for 20 s each);
* reference "raw": bare paho + queue + batched execute_values (no Odoo), the
  physical limit of this machine (steps up to 12,000 /s);
* reference "naive": one fresh Odoo cursor, one ORM create and one commit per
  message (the seed design);
* the workshop profile: 1,000 meters at 1 reading/s each (own phases) for
  ``--workshop-seconds``: runner CPU, RSS drift, p99, loss.

Everything is measured from PostgreSQL (every device has ``log_raw`` on, so
each committed reading is one ``mqtt_message`` row) and /proc (psutil).
Last stdout line: one JSON object, also written to bench/results/latest.json.

    python3 bench/ingest.py --quick          # < 3 min: 2000/s for 15 s, workshop 60 s
    python3 bench/ingest.py                  # full run (~20 min)
    python3 bench/ingest.py --profile        # + py-spy of the runner at the top rate

See bench/README.md for what each figure means.

Modules: ingest_sections.py (what runs), ingest_steps.py (one rate step),
ingest_report.py (table, summary, JSON), ingest_owned.py (processes and
databases of the run); loadgen.py, pgwatch.py, ref_raw.py, ref_naive.py and
pyspy_summary.py do the load, the measuring, the references and py-spy.
"""

import argparse
import json
import os
import pathlib
import signal
import sys
import time

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from ingest_owned import RESULTS, Owned, drop_stale_databases  # noqa: E402
from ingest_report import machine_info, print_summary, summary  # noqa: E402
from ingest_sections import Bench  # noqa: E402


def _parse_rates(text):
    return [float(x) for x in str(text).split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="one step, short workshop")
    p.add_argument("--rates", help="Odoo steps (/s), default 1000,2000,5000,8000")
    p.add_argument("--raw-rates", help="raw reference steps, default rates+12000")
    p.add_argument("--naive-rates", help="naive steps, default 500,1000,1500,2000,3000")
    p.add_argument("--step-seconds", type=float, help="per step, default 20")
    p.add_argument("--devices", type=int, default=200, help="meters in the steps")
    p.add_argument("--workshop-devices", type=int, default=1000)
    p.add_argument("--workshop-seconds", type=float, help="default 600 (quick 60)")
    p.add_argument("--drain-seconds", type=float, help="bounded wait after a step")
    p.add_argument("--publishers", type=int, help="publisher processes (auto)")
    p.add_argument(
        "--flush-ms",
        type=int,
        help="runner flush interval (default: the runner's own, FLUSH_INTERVAL_S)",
    )
    p.add_argument(
        "--runner-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the Odoo servers, e.g. ODOO_OWM_MAX_BATCH=5000",
    )
    p.add_argument(
        "--sections",
        default="threaded,workshop,history,naive,prefork,raw",
        help="any of threaded,workshop,history,naive,prefork,raw (history: the "
        "threaded pass and workshop again without the power history)",
    )
    p.add_argument(
        "--all-steps", action="store_true", help="go on after a step that lost"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy record the Odoo runner in an extra step at the top rate",
    )
    p.add_argument("--profile-seconds", type=float, default=15.0)
    p.add_argument(
        "--profile-idle",
        action="store_true",
        help="py-spy --idle: wall time (waits on PostgreSQL, the GIL, the queue)",
    )
    p.add_argument(
        "--profile-gil",
        action="store_true",
        help="py-spy --gil: only samples holding the GIL (Python's own CPU time)",
    )
    p.add_argument("--profile-rate", type=float, help="default: the last step's rate")
    p.add_argument(
        "--addons",
        choices=("bridges", "core"),
        default="bridges",
        help="installed in the Odoo sections: the addon and its bridges "
        "(maintenance, point of sale: what a workshop runs), or the addon alone",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the work folder")
    p.add_argument("--json-out", default=str(RESULTS / "latest.json"))
    args = p.parse_args(argv)
    quick = args.quick
    args.rates = _parse_rates(
        args.rates or ("2000" if quick else "1000,2000,5000,8000")
    )
    if args.raw_rates:
        args.raw_rates = _parse_rates(args.raw_rates)
    elif quick:
        args.raw_rates = list(args.rates)
    else:
        args.raw_rates = sorted(set(args.rates) | {12000.0})
    args.naive_rates = _parse_rates(
        args.naive_rates
        or (",".join(map(str, args.rates)) if quick else "500,1000,1500,2000,3000")
    )
    args.step_seconds = args.step_seconds or (15.0 if quick else 20.0)
    args.workshop_seconds = args.workshop_seconds or (60.0 if quick else 600.0)
    args.drain_seconds = args.drain_seconds or (8.0 if quick else 15.0)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    return args


def main(argv=None):
    args = parse_args(argv)
    owned = Owned()

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Also when started in the background of a script (SIGINT ignored there).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    started = time.monotonic()
    code = 0
    out = None
    try:
        drop_stale_databases()
        info = machine_info()
        print(
            f"ingest benchmark: {info.get('cores')} cores, "
            f"Python {info.get('python')}, "
            f"PostgreSQL {info.get('postgresql')}, Mosquitto {info.get('mosquitto')}, "
            f"load avg {info.get('load_avg')}",
            flush=True,
        )
        bench = Bench(args, owned)
        results = bench.run()
        info["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        out = summary(results, args, info, time.monotonic() - started)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        owned.cleanup(keep_logs=args.keep_logs)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if out is None:
        return code or 1
    print_summary(out)
    path = pathlib.Path(args.json_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
