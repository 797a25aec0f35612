"""The ingest benchmark's output: the step table, the summary, the JSON figures.

:func:`summary` turns the sections' raw results into the headline figures
(the last stdout line and bench/results/latest.json; bench/README.md says
what each means); :func:`best_lossless` is the one rule every "readings/s"
figure is read by.
"""

import contextlib
import os
import platform
import subprocess
import tempfile

from ingest_owned import ROOT, h

P99_BAR_MS = 500.0


COLUMNS = [
    ("offered", "offer/s", "{:>8.0f}"),
    ("sent", "sent", "{:>8d}"),
    ("recorded", "rows", "{:>8d}"),
    ("lost", "lost", "{:>7d}"),
    ("doubled", "dbl", "{:>4d}"),
    ("sustained_per_s", "sust/s", "{:>8.0f}"),
    ("commit_per_s_in_window", "cmt/s", "{:>7.0f}"),
    ("p50_ms", "p50ms", "{:>7.0f}"),
    ("p99_ms", "p99ms", "{:>7.0f}"),
    ("max_ms", "maxms", "{:>7.0f}"),
    ("cpu_pct", "cpu%", "{:>6.0f}"),
    ("rss_mb_peak", "rssMB", "{:>6.0f}"),
    ("pg_cpu_pct", "pg%", "{:>5.0f}"),
    ("broker_cpu_pct", "mq%", "{:>5.0f}"),
    ("publisher_cpu_pct", "pub%", "{:>5.0f}"),
    ("machine_busy_pct", "all%", "{:>5.0f}"),
    ("publisher_max_lag_ms", "lagms", "{:>6.0f}"),
]


def print_header(title):
    print(f"\n== {title}")
    head = "".join(
        f"{label:>{len(fmt.format(0) if 'd' in fmt else fmt.format(0.0))}}"
        for _key, label, fmt in COLUMNS
    )
    print(f"{'':<18}{head}", flush=True)


def print_step(name, res):
    cells = []
    for key, _label, fmt in COLUMNS:
        value = res.get(key)
        width = len(fmt.format(0) if "d" in fmt else fmt.format(0.0))
        cells.append("-".rjust(width) if value is None else fmt.format(value))
    flag = "" if res.get("kept_up", True) else "  backlog"
    print(f"{name[:18]:<18}" + "".join(cells) + flag, flush=True)


def best_lossless(steps, strict=None):
    """The highest step with zero loss and no doubles (or None).

    ``strict="kept_up"``: it also committed >= 95 % of the offered rate while
    the load ran (no backlog that only the drain wait cleared);
    ``strict="p99"``: its p99 is also within the bar."""
    ok = [s for s in steps or [] if not s["lost"] and not s["doubled"]]
    if strict == "kept_up":
        ok = [s for s in ok if s["kept_up"]]
    elif strict == "p99":
        ok = [s for s in ok if s["p99_ms"] is not None and s["p99_ms"] <= P99_BAR_MS]
    return max(ok, key=lambda s: s["offered"]) if ok else None


def _offered(step):
    return step["offered"] if step else 0


def machine_info():
    info = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(Exception):
        with contextlib.closing(h.pg_connect()) as cnx, cnx.cursor() as cur:
            cur.execute("SHOW server_version")
            info["postgresql"] = cur.fetchone()[0]
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5
        ).stdout
        info["mosquitto"] = out.splitlines()[0].replace("mosquitto version ", "")
    with contextlib.suppress(Exception):
        import paho.mqtt

        info["paho_mqtt"] = paho.mqtt.__version__
    with contextlib.suppress(Exception):
        info["odoo"] = subprocess.run(
            [h.odoo_python(), "-c", "import odoo; print(odoo.release.version)"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tempfile.gettempdir(),
        ).stdout.strip()
    with contextlib.suppress(Exception):
        info["git"] = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    return info


def summary(results, args, info, elapsed):
    secs = results["sections"]
    out = {}
    thr = secs.get("threaded", {}).get("steps")
    best = best_lossless(thr)
    ref = best or (thr[0] if thr else None)
    out["readings_per_s"] = best["sustained_per_s"] if best else 0
    out["offered_per_s"] = best["offered"] if best else 0
    out["lost"] = ref["lost"] if ref else None
    out["doubled"] = ref["doubled"] if ref else None
    out["p50_ms"] = ref["p50_ms"] if ref else None
    out["p99_ms"] = ref["p99_ms"] if ref else None
    out["max_ms"] = ref["max_ms"] if ref else None
    out["p99_ok"] = bool(
        best and best["p99_ms"] is not None and best["p99_ms"] <= P99_BAR_MS
    )
    out["top_step_lossless"] = bool(best and thr and best is thr[-1])
    for name, key in (
        ("prefork", "prefork_readings_per_s"),
        ("raw", "raw_limit_readings_per_s"),
        ("naive", "naive_readings_per_s"),
    ):
        b = best_lossless(secs.get(name, {}).get("steps"))
        out[key] = b["sustained_per_s"] if b else 0
        out[key.replace("readings_per_s", "p99_ms")] = b["p99_ms"] if b else None
    # Stricter readings of the same steps: lossless AND kept up during the
    # load (no backlog), lossless AND p99 within the bar.
    for strict in ("kept_up", "p99"):
        out[f"{strict}_readings_per_s"] = {
            name: _offered(best_lossless(sec.get("steps"), strict))
            for name, sec in secs.items()
            if "steps" in sec
        }
    ws = results.get("workshop") or {}
    rss = [r for _t, r in ws.get("rss_series") or []]
    out["workshop_cpu_pct"] = ws.get("cpu_pct_window", ws.get("cpu_pct"))
    out["workshop_rss_mb_start"] = rss[0] if rss else None
    out["workshop_rss_mb_end"] = rss[-1] if rss else None
    out["workshop_p99_ms"] = ws.get("p99_ms")
    out["workshop_lost"] = ws.get("lost")
    # A saturated design's commit rate while the load ran: its capacity
    # estimate even when no step was lossless (e.g. the naive one in --quick).
    out["max_commit_per_s"] = {
        name: max(
            (s["commit_per_s_in_window"] for s in sec.get("steps", [])), default=None
        )
        for name, sec in secs.items()
    }
    out["cpu_pct_per_step"] = {
        name: {f"{s['offered']:g}": s["cpu_pct"] for s in sec.get("steps", [])}
        for name, sec in secs.items()
    }
    off = secs.get("threaded_nohist", {})
    if off:
        ws_off = results.get("workshop_nohist") or {}
        best_off = best_lossless(off.get("steps"))
        out["history"] = {
            "lossless_per_s_on": out["readings_per_s"],
            "lossless_per_s_off": best_off["sustained_per_s"] if best_off else 0,
            "workshop_cpu_pct_on": out["workshop_cpu_pct"],
            "workshop_cpu_pct_off": ws_off.get("cpu_pct_window", ws_off.get("cpu_pct")),
            "storage": secs.get("threaded", {}).get("history"),
        }
    out["bars"] = {
        "5000_per_s_lossless_p99_500ms": bool(
            best and best["offered"] >= 5000 and out["p99_ok"]
        ),
        "workshop_cpu_under_25pct": bool(
            ws.get("cpu_pct") is not None and ws["cpu_pct"] < 25
        ),
    }
    out["config"] = {
        "quick": args.quick,
        "rates": args.rates,
        "raw_rates": args.raw_rates,
        "naive_rates": args.naive_rates,
        "step_seconds": args.step_seconds,
        "devices": args.devices,
        "workshop_devices": args.workshop_devices,
        "workshop_seconds": args.workshop_seconds,
        "drain_seconds": args.drain_seconds,
        "flush_ms": args.flush_ms,
        "runner_env": args.runner_env,
        "addons": args.addons,
    }
    out["pg_single_commit_per_s"] = results.get("pg_single_commit_per_s")
    out["machine"] = info
    out["elapsed_s"] = round(elapsed, 1)
    out["details"] = results
    return out


def print_summary(out):
    print("\n== Summary")
    if out["offered_per_s"]:
        print(
            f"Odoo runner threaded : {out['readings_per_s']:>7.0f} readings/s "
            f"lossless (offered {out['offered_per_s']:g}/s), p99 {out['p99_ms']} ms "
            f"({'<=' if out['p99_ok'] else '>'} {P99_BAR_MS:g} ms)"
        )
    else:
        print("Odoo runner threaded :       0 readings/s (no lossless step)")
    print(f"Odoo runner prefork  : {out['prefork_readings_per_s']:>7.0f} readings/s")
    print(
        "lossless and kept up during the load (/s): "
        + ", ".join(f"{k} {v:g}" for k, v in out["kept_up_readings_per_s"].items())
    )
    print(
        f"lossless and p99 <= {P99_BAR_MS:g} ms (/s): "
        + ", ".join(f"{k} {v:g}" for k, v in out["p99_readings_per_s"].items())
    )
    print(f"raw limit (no Odoo)  : {out['raw_limit_readings_per_s']:>7.0f} readings/s")
    print(f"naive (commit/msg)   : {out['naive_readings_per_s']:>7.0f} readings/s")
    if out["workshop_cpu_pct"] is not None:
        ws = out["details"]["workshop"]
        print(
            f"workshop             : cpu {out['workshop_cpu_pct']}% of a core "
            f"(idle {ws.get('idle_cpu_pct')}%), RSS {out['workshop_rss_mb_start']} -> "
            f"{out['workshop_rss_mb_end']} MB, p99 {out['workshop_p99_ms']} ms, "
            f"lost {out['workshop_lost']}"
        )
    hist = out.get("history")
    if hist:
        storage = hist.get("storage") or {}
        print(
            f"power history        : lossless {hist['lossless_per_s_on']:g}/s on, "
            f"{hist['lossless_per_s_off']:g}/s off; workshop cpu "
            f"{hist['workshop_cpu_pct_on']}% on, {hist['workshop_cpu_pct_off']}% off; "
            f"{storage.get('bytes_per_reading')} bytes per reading "
            f"({storage.get('chunks')} chunks)"
        )
    print(
        f"PostgreSQL, one row + COMMIT per round trip: "
        f"{out['pg_single_commit_per_s']}/s (fsync bound of a commit per message)"
    )
    print(
        f"machine: {out['machine'].get('cores')} cores, load avg "
        f"{out['machine'].get('load_avg')}; elapsed {out['elapsed_s']:.0f} s"
    )
