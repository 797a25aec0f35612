"""deploy/mosquitto/: the production broker configuration and its ACL, run by
a real Mosquitto exactly as shipped (only paths and ports are the test's).

Nobody gets in anonymously; over the TLS listener each meter publishes only
under its own prefix (its answers to the runner's polls included), reads
only its own polls;
the runner reads everything and publishes only polls; QoS 1 readings queued
for the runner's persistent session survive a broker restart."""

import os
import subprocess
import threading
import time
import uuid

import owm_harness as h
import paho.mqtt.client as mqtt
import pytest

DEPLOY = h.ROOT / "deploy" / "mosquitto"
METER_A = "shellypmminig3-0000000000a1"
METER_B = "shellypmminig3-0000000000b2"
RUNNER = "owm-runner"
PASSWORDS = {RUNNER: "runner-Pw-31", METER_A: "meter-a-Pw-7", METER_B: "meter-b-Pw-9"}


class Client:
    """One MQTT 5 client that records what it receives and its PUBACKs."""

    def __init__(self, port, user, tls=None, clean=True, password=None):
        self.received = []
        self.acks = {}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=user or f"anon-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        if user:
            self.client.username_pw_set(user, password or PASSWORDS[user])
        if tls:
            self.client.tls_set(ca_certs=str(tls["ca"]))
        self.client.on_message = lambda c, u, m: self.received.append(
            (m.topic, m.payload.decode())
        )
        self.client.on_publish = self._on_publish
        self.connected = threading.Event()
        self.reason = None
        self.client.on_connect = self._on_connect
        properties = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=clean, properties=properties)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.reason = reason
        self.connected.set()

    def _on_publish(self, client, userdata, mid, reason, properties):
        self.acks[mid] = reason

    def wait_connected(self):
        assert self.connected.wait(10), "no CONNACK"
        return self.reason

    def subscribe(self, topic):
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10)

    def publish(self, topic, payload):
        """Publish at QoS 1; the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        h.wait_for(lambda: info.mid in self.acks, 10, f"PUBACK of {topic}")
        return self.acks[info.mid]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def production_broker(workdir):
    """Mosquitto on deploy/mosquitto's files; paths and ports rewritten."""
    home = workdir / f"mosquitto-prod-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    tls = h.make_tls_material(home / "certs")
    passwd = home / "open_workshop.passwd"
    for user, password in PASSWORDS.items():
        subprocess.run(
            [
                "mosquitto_passwd",
                "-b",
                *(["-c"] if not passwd.exists() else []),
                str(passwd),
                user,
                password,
            ],
            check=True,
            capture_output=True,
        )
    acl = home / "open_workshop.acl"
    acl.write_text((DEPLOY / "open_workshop.acl").read_text())
    plain, secure = h.free_port(), h.free_port()
    conf = (DEPLOY / "open_workshop.conf").read_text()
    for shipped, here in (
        ("/etc/mosquitto/open_workshop.passwd", passwd),
        ("/etc/mosquitto/open_workshop.acl", acl),
        ("/etc/mosquitto/certs/broker.crt", tls["server"]),
        ("/etc/mosquitto/certs/broker.key", tls["server_key"]),
        ("/etc/mosquitto/certs/ca.crt", tls["ca"]),
        ("/var/lib/mosquitto/", f"{home}/"),
        ("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1"),
        ("listener 8883", f"listener {secure} 127.0.0.1"),
        ("/run/mosquitto/mosquitto.pid", home / "mosquitto.pid"),
        ("/var/log/mosquitto/mosquitto.log", home / "mosquitto.log"),
    ):
        assert shipped in conf, shipped
        conf = conf.replace(shipped, str(here))
    if os.geteuid() == 0:  # else Mosquitto drops to a user who cannot read home
        conf = "user root\n" + conf
    (home / "mosquitto.conf").write_text(conf)

    class Broker:
        proc = None

        def start(self):
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(home / "mosquitto.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            h.wait_for(lambda: h.port_open(secure), 10, "the TLS listener")
            return self

        def stop(self):
            self.proc.terminate()  # SIGTERM: the persistence file is written
            self.proc.wait(10)

    broker = Broker().start()
    yield broker, plain, secure, tls
    if broker.proc.poll() is None:
        broker.stop()


@pytest.mark.timeout(120)
def test_the_production_broker_keeps_every_meter_to_its_own_topics(
    production_broker,
):
    broker, plain, secure, tls = production_broker
    anonymous = Client(plain, None)
    assert anonymous.wait_connected().is_failure  # "Not authorized"
    anonymous.close()
    assert Client(secure, METER_A, tls, password="wrong").wait_connected().is_failure

    runner = Client(secure, RUNNER, tls, clean=False)
    meter_a = Client(secure, METER_A, tls)
    meter_b = Client(secure, METER_B, tls)
    clients = [runner, meter_a, meter_b]
    try:
        for client in clients:
            assert not client.wait_connected().is_failure
        runner.subscribe("#")
        meter_a.subscribe(f"{METER_A}/rpc")
        meter_b.subscribe(f"{METER_A}/rpc")  # another meter's polls: not delivered
        meter_b.subscribe(f"{METER_A}/events/rpc")  # nor its readings

        allowed = [
            (meter_a, f"{METER_A}/events/rpc", "a reading"),
            (meter_a, f"{METER_A}/online", "true"),
            (meter_a, f"shellies/{METER_A}/relay/0/power", "12.5"),  # Gen1 layout
            (meter_a, f"{METER_A}/{RUNNER}/rpc", "a poll reply"),
            (runner, f"{METER_A}/rpc", "a poll"),
        ]
        refused = [
            (meter_a, f"{METER_B}/events/rpc", "a forged reading"),
            (meter_a, f"shellies/{METER_B}/relay/0/power", "999"),
            (meter_a, f"{METER_B}/rpc", "a forged poll"),
            (meter_a, f"{METER_B}/{RUNNER}/rpc", "an answer for another meter"),
            (meter_a, f"{RUNNER}/rpc", "an answer on no meter's topic"),
            (runner, f"{METER_A}/events/rpc", "the runner forging a reading"),
        ]
        for client, topic, payload in allowed:
            assert not client.publish(topic, payload).is_failure, topic
        for client, topic, payload in refused:
            assert client.publish(topic, payload).is_failure, topic  # 135
        time.sleep(0.5)  # anything wrongly forwarded would be here by now
        want = {(topic, payload) for client, topic, payload in allowed}
        assert set(runner.received) == want
        assert meter_a.received == [(f"{METER_A}/rpc", "a poll")]
        assert meter_b.received == []

        # Readings queued for the runner's persistent session while it is
        # away survive a broker restart (persistence, max_queued_messages).
        runner.close()
        for n in range(3):
            meter_a.publish(f"{METER_A}/events/rpc", f"queued {n}")
        meter_a.close()
        meter_b.close()
        broker.stop()
        broker.start()
        back = Client(secure, RUNNER, tls, clean=False)
        clients.append(back)
        assert back.wait_connected().is_failure is False
        h.wait_for(lambda: len(back.received) >= 3, 10, "the queued readings")
        assert back.received == [
            (f"{METER_A}/events/rpc", f"queued {n}") for n in range(3)
        ]
    finally:
        for client in clients:
            client.close()
