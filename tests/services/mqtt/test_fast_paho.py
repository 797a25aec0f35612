"""The tuned paho client against a real (private) Mosquitto: every message
arrives once and in order through the buffered reads, acknowledgements sent
in one write are honoured by the broker, unacknowledged ones come back."""

import importlib.metadata
import socket
import subprocess
import threading
import time

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


def subscriber(port, client_id, got, clean_start):
    client = FastClient(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.on_message = lambda c, u, m: got.append((m.mid, m.payload, bool(m.dup)))
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


def publish(port, count):
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-test-pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish("paho/test", str(i).encode(), qos=1) for i in range(count)]
    for info in infos:
        info.wait_for_publish(10)
    pub.loop_stop()
    pub.disconnect()


def test_every_message_once_in_order_and_batched_acks_count(broker):
    got = []
    sub = subscriber(broker, "paho-test-a", got, clean_start=True)
    assert run_until(sub, lambda: sub.is_connected())
    time.sleep(0.2)
    threading.Thread(target=publish, args=(broker, 3000), daemon=True).start()
    assert run_until(sub, lambda: len(got) >= 3000, timeout=30)
    assert [int(p) for _mid, p, _dup in got] == list(range(3000))
    sub.ack_many([mid for mid, _p, _dup in got])
    run_until(sub, lambda: False, timeout=0.5)  # let the PUBACKs go out
    sub.disconnect()
    # The broker got every acknowledgement: nothing comes again.
    again = []
    sub = subscriber(broker, "paho-test-a", again, clean_start=False)
    run_until(sub, lambda: False, timeout=1.5)
    sub.disconnect()
    assert again == []


def test_unacknowledged_messages_come_again_with_dup(broker):
    got = []
    sub = subscriber(broker, "paho-test-b", got, clean_start=True)
    assert run_until(sub, lambda: sub.is_connected())
    time.sleep(0.2)
    publish(broker, 50)
    assert run_until(sub, lambda: len(got) >= 50)
    sub.ack_many([mid for mid, _p, _dup in got[:20]])
    run_until(sub, lambda: False, timeout=0.5)
    sub.disconnect()
    again = []
    sub = subscriber(broker, "paho-test-b", again, clean_start=False)
    assert run_until(sub, lambda: len(again) >= 30)
    sub.disconnect()
    assert [int(p) for _mid, p, _dup in again] == list(range(20, 50))
    assert all(dup for _mid, _p, dup in again)
    assert [mid for mid, _p, _dup in again] == [mid for mid, _p, _dup in got[20:]]


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
