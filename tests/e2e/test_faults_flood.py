"""A meter gone mad: one device floods ~10,000 messages/s (QoS 0, then QoS 1)
next to two normal meters.  The flooder is capped at its max_msg_rate and
flagged, the normal meters' sessions stay exact, and neither the database
(raw rows) nor the server's memory follows the flood."""

import json
import threading
import time

import owm_harness as h
import pytest

NORMAL = [f"shellypmminig3-00000000c00{i}" for i in range(2)]
FLOODER = "shellypmminig3-00000000c0ff"
DEVICE_VALS = {"poll_interval_s": 0, "log_raw": True}
FLOOD_RATE = 10_000  # messages/s asked of the flooding publisher
FLOOD_S = 5.0  # per QoS
CAP = 50  # the device's max_msg_rate (the default)


def flood(pub, seconds, rate):
    """A tight publish loop, paced to ``rate``; returns (count, achieved rate)."""
    topic = f"{FLOODER}/events/rpc"
    started = time.monotonic()
    count = 0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        if count > elapsed * rate:
            time.sleep(0.001)
            continue
        for _ in range(100):
            frame = {
                "src": FLOODER,
                "method": "NotifyStatus",
                "params": {"ts": time.time(), "pm1:0": {"apower": 5.0 + count % 7}},
            }
            pub.raw(topic, json.dumps(frame))
            count += 1
    return count, count / (time.monotonic() - started)


def flag(rpc, device_id):
    rows = rpc.search_read("mqtt.device", [("id", "=", device_id)], ["rate_limited"])
    return rows[0]["rate_limited"]


class MemoryWatch(threading.Thread):
    """Peak resident memory of the server process while it runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = self.baseline = h.process_tree_rss_mb(pid)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, h.process_tree_rss_mb(self.pid))


@pytest.mark.timeout(300)
def test_a_flooding_meter_is_capped(broker, servers, publisher):
    server = servers()
    rpc = server.rpc()
    devices = [(p, p, DEVICE_VALS) for p in NORMAL]
    devices.append(("Flooder", FLOODER, DEVICE_VALS))
    conn_id, ids = h.setup_workshop(rpc, broker.port, devices)
    normal_ids, flooder_id = ids[:2], ids[2]
    h.wait_state(rpc, conn_id, "connected", 20)
    stream = h.MeterStream(publisher, NORMAL, rate_hz=10).start()
    memory = MemoryWatch(server.proc.pid)
    memory.start()
    time.sleep(2)
    sent = {}
    flagged = []
    started = time.monotonic()
    for qos in (0, 1):
        pub = h.ShellyPublisher(broker.port, qos=qos)
        try:
            sent[qos] = flood(pub, FLOOD_S, FLOOD_RATE)
            flagged.append(flag(rpc, flooder_id))
            pub.flush(timeout=120)
        finally:
            pub.close()
    flood_s = time.monotonic() - started
    total = sum(count for count, _ in sent.values())

    def drained():
        row = h.connection_row(rpc, conn_id, ["stat_received", "stat_rate_limited"])
        return row if row["stat_received"] >= total * 0.99 else None

    # QoS 0 copies may be dropped by the broker under load; QoS 1 ones never.
    conn = h.wait_for(drained, 120, "the runner to work through the flood", 1.0)
    stream.stop()
    publisher.flush()
    got = h.stream_figures(rpc, stream, normal_ids)
    memory.stop.set()
    memory.join(5)
    flooder_rows = rpc("mqtt.message", "search_count", [("device_id", "=", flooder_id)])
    flooder = rpc.search_read(
        "mqtt.device", [("id", "=", flooder_id)], ["rate_limited", "current_state"]
    )[0]
    h.figures(
        "flood 10k msg/s (QoS 0 then QoS 1) next to two normal meters",
        flood_sent=total,
        flood_rate_qos0=round(sent[0][1]),
        flood_rate_qos1=round(sent[1][1]),
        stat_received=conn["stat_received"],
        stat_rate_limited=conn["stat_rate_limited"],
        flooder_raw_rows=flooder_rows,
        rss_baseline_mb=round(memory.baseline),
        rss_peak_mb=round(memory.peak),
        normal=got,
    )
    # The flooder: capped, flagged on the device and counted on the connection.
    assert all(flagged) and flooder["rate_limited"] is True
    assert conn["stat_rate_limited"] >= total * 0.9
    assert flooder_rows <= CAP * (flood_s + 5) + 2 * CAP
    assert flooder["current_state"] == "idle"
    # The normal meters did not notice.
    assert (got["lost"], got["doubled"], got["unexpected"]) == (0, 0, 0)
    assert got["redelivered"] == 0 and got["sessions_exact"]
    # Memory follows the cap, not the flood.
    assert memory.peak - memory.baseline < 64, "memory grew with the flood"
    # Once it calms down the flag goes away.
    calm = h.ShellyPublisher(broker.port)
    try:
        t1 = time.time()
        for i in range(3):
            calm.notify_status(FLOODER, t1 + i, 5.0)
            time.sleep(1)
        calm.flush()
    finally:
        calm.close()
    h.wait_for(lambda: not flag(rpc, flooder_id), 10, "the flag to clear")
