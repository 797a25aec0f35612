"""The tuned paho client against a real (private) Mosquitto: every message
arrives once and in order through the buffered reads, acknowledgements sent
in one write are honoured by the broker, unacknowledged ones come back."""

import importlib.metadata
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ....services.mqtt.fast_paho import FastClient

pytestmark = pytest.mark.broker


def test_paho_still_has_the_internals_we_use():
    for name in (
        "_sock_recv",
        "_packet_read",
        "_loop_rc_handle",
        "_packet_queue",
        "_easy_log",
        "_handle_on_message",
    ):
        assert callable(getattr(mqtt.Client, name, None)), name
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    assert isinstance(client._on_message_filtered._root._children, dict)
    assert client._in_callback_mutex is not None
    assert client._msgtime_mutex is not None
    assert client._in_packet["command"] == 0
    assert isinstance(client._last_bytes_received, float)
    assert client._manual_ack is False
    assert client._protocol == mqtt.MQTTv311
    assert mqtt.time_func is time.monotonic
    assert importlib.metadata.version("paho-mqtt").startswith("2.2.")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path_factory.mktemp("broker") / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def subscriber(port, client_id, got, clean_start, inbound=False):
    """A FastClient that records (mid, payload, dup): by paho's own path
    (on_message), or with ``inbound`` by the buffered one (on_inbound)."""
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.paths = Counter()  # how many messages came by which path

    def on_message(_client, _userdata, msg):
        client.paths["paho"] += 1
        got.append((msg.mid, msg.payload, bool(msg.dup)))

    def on_inbound(_topic, payload, _qos, mid, dup, _retain):
        client.paths["inbound"] += 1
        got.append((mid, payload, dup))

    client.on_message = on_message
    if inbound:
        client.on_inbound = on_inbound
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    props.ReceiveMaximum = 5000
    client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
    client.subscribe("paho/test", qos=1)
    return client


def run_until(client, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        client.loop(timeout=0.05)
        while client.buffered():
            client.loop_read()
    return predicate()


def publish(port, count, pad=0, protocol=mqtt.MQTTv311):
    """``count`` QoS 1 messages "0", "1", ... (``pad`` spaces after each
    number); by MQTT 5 with properties the broker passes on."""
    pub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="paho-test-pub", protocol=protocol
    )
    props = None
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("meter", "x" * 200), ("k", "v")]
        props.MessageExpiryInterval = 600
        props.ContentType = "application/json"
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [
        pub.publish("paho/test", f"{i}{' ' * pad}".encode(), qos=1, properties=props)
        for i in range(count)
    ]
    for info in infos:
        info.wait_for_publish(10)
    pub.loop_stop()
    pub.disconnect()


# The buffered path meets packets cut by the 64 KiB reads (300-byte
# payloads) and MQTT 5 properties to skip (MQTT 3.1.1's packets: below, byte
# for byte; a 3.1.1 broker sends only 20 unacknowledged messages at a time).
PATHS = {
    "paho": dict(inbound=False, pad=0),
    "inbound": dict(inbound=True, pad=300),
    "inbound-props": dict(inbound=True, pad=300, pub=mqtt.MQTTv5),
}


@pytest.mark.parametrize("path", PATHS)
def test_every_message_once_in_order_and_batched_acks_count(broker, path):
    how = PATHS[path]
    got = []
    name = f"paho-test-a-{path}"
    sub = subscriber(broker, name, got, True, how["inbound"])
    assert run_until(sub, lambda: sub.is_connected())
    time.sleep(0.2)
    args = (broker, 3000, how["pad"], how.get("pub", mqtt.MQTTv311))
    threading.Thread(target=publish, args=args, daemon=True).start()
    assert run_until(sub, lambda: len(got) >= 3000, timeout=30)
    assert [p for _mid, p, _dup in got] == [
        f"{i}{' ' * how['pad']}".encode() for i in range(3000)
    ]
    assert not any(dup for _mid, _p, dup in got)
    if how["inbound"]:  # paho's path: a packet cut where the socket had no more
        assert sub.paths["inbound"] > 20 * sub.paths["paho"]
    else:
        assert sub.paths == {"paho": 3000}
    sub.ack_many([mid for mid, _p, _dup in got])
    run_until(sub, lambda: False, timeout=0.5)  # let the PUBACKs go out
    sub.disconnect()
    # The broker got every acknowledgement: nothing comes again.
    again = []
    sub = subscriber(broker, name, again, False, how["inbound"])
    run_until(sub, lambda: False, timeout=1.5)
    sub.disconnect()
    assert again == []


@pytest.mark.parametrize("inbound", [False, True], ids=["paho", "inbound"])
def test_unacknowledged_messages_come_again_with_dup(broker, inbound):
    got = []
    name = f"paho-test-b-{inbound}"
    sub = subscriber(broker, name, got, clean_start=True, inbound=inbound)
    assert run_until(sub, lambda: sub.is_connected())
    time.sleep(0.2)
    publish(broker, 50)
    assert run_until(sub, lambda: len(got) >= 50)
    sub.ack_many([mid for mid, _p, _dup in got[:20]])
    run_until(sub, lambda: False, timeout=0.5)
    sub.disconnect()
    again = []
    sub = subscriber(broker, name, again, clean_start=False, inbound=inbound)
    assert run_until(sub, lambda: len(again) >= 30)
    sub.disconnect()
    assert [int(p) for _mid, p, _dup in again] == list(range(20, 50))
    assert all(dup for _mid, _p, dup in again)
    assert [mid for mid, _p, _dup in again] == [mid for mid, _p, _dup in got[20:]]


def _varint(n):
    out = bytearray()
    while True:
        n, low = divmod(n, 128)
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish_packet(
    topic, payload, qos=1, mid=1, dup=False, retain=False, props=b"", v5=True
):
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    if v5:
        body += _varint(len(props)) + props
    body += payload
    header = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return bytes([header]) + _varint(len(body)) + body


class _Socket:
    """Hands out ``data`` in slices of the given sizes (in turn), then
    answers with ``then`` in turn (raised when an exception, the last one
    again and again; by default nothing there: BlockingIOError), as a TLS
    socket does after an alert.  ``reads``: the calls of ``recv``."""

    def __init__(self, data, sizes, then=None):
        self.data, self.sizes, self.reads = data, sizes, 0
        self.then = [BlockingIOError()] if then is None else list(then)

    def recv(self, size):
        self.reads += 1
        if not self.data:
            answer = self.then[0] if len(self.then) == 1 else self.then.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer
        size = min(size, self.sizes[(self.reads - 1) % len(self.sizes)])
        out, self.data = self.data[:size], self.data[size:]
        return out

    def close(self):
        pass


def _read_all(data, inbound, protocol=mqtt.MQTTv5, sizes=(1 << 20,)):
    """Feed ``data`` through loop_read as the socket delivers it (slices of
    ``sizes``); what on_message (paho's path) and on_inbound (the buffered
    one) got, as (topic, payload, qos, mid, dup, retain)."""
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="paho-bytes",
        protocol=protocol,
        manual_ack=True,
    )
    got = []
    if inbound:
        client.on_inbound = lambda *values: got.append(values)
    client.on_message = lambda c, u, m: got.append(
        (
            m._topic.decode("utf-8", "replace"),
            m.payload,
            m.qos,
            m.mid,
            bool(m.dup),
            bool(m.retain),
        )
    )
    sock = client._sock = _Socket(data, sizes)
    for _ in range(10 * len(data)):
        assert client.loop_read() == mqtt.MQTT_ERR_SUCCESS
        if not sock.data and not client.buffered() and not client._in_packet["command"]:
            break
    client._sock = None
    return got


def _packets(v5):
    props = b"\x26" + b"\x00\x01k" + b"\x00\x90" + b"v" * 0x90  # a user property
    return b"".join(
        (
            _publish_packet(b"a/b", b"x" * 200, mid=7, v5=v5),
            _publish_packet(b"a/\xff\xfe", b"bad topic", mid=8, v5=v5),  # not UTF-8
            _publish_packet(b"q0", b"no mid", qos=0, v5=v5),
            _publish_packet(b"a/b", b"again", mid=9, dup=True, retain=True, v5=v5),
            _publish_packet(b"p", b"props" * 40, mid=10, props=props * v5, v5=v5),
            _publish_packet(b"long", b"y" * 20000, mid=11, v5=v5),  # 3-byte length
            _publish_packet(b"empty", b"", mid=12, v5=v5),
        )
    )


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["v5", "v311"])
def test_the_buffered_path_reads_what_pahos_reads(protocol):
    data = _packets(protocol == mqtt.MQTTv5)
    expected = _read_all(data, False, protocol)
    assert [(t, q, m, d, r) for t, _p, q, m, d, r in expected] == [
        ("a/b", 1, 7, False, False),
        ("a/\ufffd\ufffd", 1, 8, False, False),
        ("q0", 0, 0, False, False),
        ("a/b", 1, 9, True, True),
        ("p", 1, 10, False, False),
        ("long", 1, 11, False, False),
        ("empty", 1, 12, False, False),
    ]
    assert expected[4][1] == b"props" * 40 and expected[5][1] == b"y" * 20000
    assert _read_all(data, True, protocol) == expected
    # Packets cut anywhere by the socket's reads: the same messages.
    for sizes in ((1,), (7, 300), (5000, 3), (65536,)):
        assert _read_all(data, True, protocol, sizes) == expected, sizes


def test_what_the_buffered_path_leaves_to_paho():
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.on_inbound = lambda *values: pytest.fail("not for the buffered path")
    whole = _publish_packet(b"a/b", b"x" * 300)
    cases = {
        "not all here": whole[:-1],
        "length not all here": whole[:2],
        "QoS 2": _publish_packet(b"a/b", b"x", qos=2),
        "not a PUBLISH": b"\xd0\x00",  # PINGRESP
        "topic past the end": b"\x32\x04\x00\x09ab",
        "properties past the end": b"\x32\x06\x00\x01a\x00\x01\x05",
        "length of 5 bytes": b"\x32\xff\xff\xff\xff\x01",
    }
    for case, data in cases.items():
        client._rbuf, client._rpos = data, 0
        assert client._buffered_publish() is None, case
        assert client._rpos == 0, case  # nothing consumed: paho reads it all
    client._rbuf = whole
    client.message_callback_add("a/#", lambda c, u, m: None)
    assert client._buffered_publish() is None  # a per-topic callback: paho's rule
    v311 = FastClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    v311._manual_ack = True
    v311.on_inbound = client.on_inbound
    v311._rbuf, v311._rpos = _publish_packet(b"", b"x", v5=False), 0
    assert v311._buffered_publish() is None  # an empty topic: paho refuses it


ALERT = ssl.SSLError(
    1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"
)


@pytest.mark.parametrize(
    "data, then, reason",
    [
        (b"", [ALERT, b""], "certificate required"),
        (
            _publish_packet(b"a/b", b"x" * 300),
            [ConnectionResetError(104, "reset"), b""],
            "reset",
        ),
    ],
    ids=["a TLS alert, nothing read", "reset in the middle of a PUBLISH"],
)
def test_a_read_error_reaches_on_log_as_pahos_own_read_reports_it(data, then, reason):
    """What the socket answers the buffered path's read is what paho's path
    meets next: the connection is lost with paho's log line and its reason,
    nothing half read is delivered."""
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.on_inbound = lambda *values: pytest.fail("nothing whole was read")
    heard = []
    client.on_log = lambda c, u, level, buf: heard.append((level, buf))
    client._sock = _Socket(data, (max(1, len(data) // 2),), then)
    rc = mqtt.MQTT_ERR_SUCCESS
    for _ in range(3):
        rc = client.loop_read()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            break
    assert rc == mqtt.MQTT_ERR_CONN_LOST
    errors = [buf for level, buf in heard if level == mqtt.MQTT_LOG_ERR]
    assert len(errors) == 1 and errors[0].startswith("failed to receive on socket: ")
    assert reason in errors[0]


def test_a_closed_socket_is_read_once():
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.on_inbound = lambda *values: pytest.fail("nothing was sent")
    sock = client._sock = _Socket(b"", (1,), [b"", BlockingIOError()])
    assert client.loop_read() == mqtt.MQTT_ERR_CONN_LOST
    assert sock.reads == 1  # paho's path met the close the buffered read saw


def test_debug_lines_are_not_formatted_the_others_reach_on_log():
    client = FastClient(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-log")
    heard = []
    client.on_log = lambda c, u, level, buf: heard.append((level, buf))

    class Loud:
        def __str__(self):
            raise AssertionError("a debug line was formatted")

    client._easy_log(mqtt.MQTT_LOG_DEBUG, "Received PUBLISH %s", Loud())
    client._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", "reset")
    assert heard == [(mqtt.MQTT_LOG_ERR, "failed to receive on socket: reset")]


def test_a_per_topic_callback_still_gets_its_messages(broker):
    got, filtered = [], []
    client = subscriber(broker, "paho-test-filtered", got, clean_start=True)
    client.message_callback_add("paho/test", lambda c, u, m: filtered.append(m.mid))
    assert run_until(client, lambda: client.is_connected())
    run_until(client, lambda: False, timeout=0.3)  # the subscription's ack
    publish(broker, 3)
    assert run_until(client, lambda: len(filtered) == 3)
    assert got == []  # paho's rule: a per-topic callback takes the message
    client.disconnect()
