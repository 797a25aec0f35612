"""tools/harness_meters.ShellyPublisher keeps its frames in order across a
reconnect: the fault tests count a frame that reaches the runner after a
newer one as lost (``stale``), so a publisher that reorders would fail them
by itself.

paho resends what it kept only once the broker's CONNACK is in, with its
in-flight count reset: a frame published between the CONNECT and that
resend went out first.  A broker of a few lines (plain sockets, MQTT 3.1.1)
makes that window long: it drops the first connection with frames not
acknowledged and holds the second one's CONNACK for half a second while
the meter goes on publishing.
"""

import json
import pathlib
import socket
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from harness_base import wait_for  # noqa: E402
from harness_meters import ShellyPublisher  # noqa: E402

CONNECT, PUBLISH, PINGREQ, DISCONNECT = 1, 3, 12, 14
CONNACK = bytes([0x20, 2, 0, 0])


def read_packet(sock):
    """(type, flags, body) of the next packet, or None at the end."""
    head = sock.recv(1)
    if not head:
        return None
    length, shift = 0, 0
    while True:
        byte = sock.recv(1)[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return head[0] >> 4, head[0] & 0x0F, body


def publish_of(body):
    """(packet id, device ts) of a QoS 1 PUBLISH body."""
    size = int.from_bytes(body[:2], "big")
    mid = int.from_bytes(body[2 + size : 4 + size], "big")
    return mid, json.loads(body[4 + size :])["params"]["ts"]


class SlowBroker:
    """First connection: takes 5 frames, acknowledges none, hangs up.
    Second: holds its CONNACK ``hold_s``, then takes and acknowledges all,
    noting each frame's device time in the order it arrived."""

    def __init__(self, hold_s=0.5):
        self.hold_s = hold_s
        self.arrived = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        with self.listener.accept()[0] as first:
            assert read_packet(first)[0] == CONNECT
            first.sendall(CONNACK)
            taken = 0
            while taken < 5:
                kind, _flags, _body = read_packet(first)
                taken += kind == PUBLISH
        with self.listener.accept()[0] as second:
            assert read_packet(second)[0] == CONNECT
            time.sleep(self.hold_s)
            second.sendall(CONNACK)
            while (packet := read_packet(second)) is not None:
                kind, _flags, body = packet
                if kind == PUBLISH:
                    mid, ts = publish_of(body)
                    self.arrived.append(ts)
                    second.sendall(bytes([0x40, 2]) + mid.to_bytes(2, "big"))
                elif kind == PINGREQ:
                    second.sendall(bytes([0xD0, 0]))
                elif kind == DISCONNECT:
                    break


def test_frames_kept_over_a_reconnect_arrive_in_order():
    broker = SlowBroker()
    publisher = ShellyPublisher(broker.port)
    sent = []
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            ts = float(len(sent))
            publisher.notify_status("shellypmminig3-0000000000aa", ts, 100.0)
            sent.append(ts)
            time.sleep(0.01)
        publisher.flush(10)
        wait_for(lambda: set(broker.arrived) >= set(sent), 10, "every frame")
    finally:
        publisher.close()
        broker.listener.close()
    # The second connection: the 5 unacknowledged frames and everything
    # after them, each first arrival newer than the one before.
    first_arrivals = list(dict.fromkeys(broker.arrived))
    assert first_arrivals == sorted(first_arrivals)
    assert first_arrivals[0] <= 4.0, "the unacknowledged frames come again"
    assert len(first_arrivals) > 100
