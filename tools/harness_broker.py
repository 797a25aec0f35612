"""Private Mosquitto brokers for the tests: plain, for faults, with TLS."""

import os
import pathlib
import subprocess
import time

from harness_base import free_port, port_open, wait_for


class Mosquitto:
    """A private broker: ``persistence`` keeps QoS 1 messages across restarts."""

    def __init__(self, workdir, port=None, persistence=True, extra_conf=""):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.proc = None

    @property
    def conf_path(self):
        return self.workdir / "mosquitto.conf"

    def _write_conf(self):
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            f"log_dest file {self.workdir}/mosquitto.log",
            self.extra_conf,
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self):
        self._write_conf()
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Mosquitto saves its persistence file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s=0.0):
        self.stop()
        time.sleep(down_s)
        self.start()


# -- Odoo ---------------------------------------------------------------------
# -- fault scenarios: restarts, faults, TLS -----------------------------------
# Mosquitto's default log types plus one line per SUBSCRIBE ("<time>: <client id>
# <qos> <filter>"), so a test can see that a runner resubscribed.
SUBSCRIBE_LOG = "\n".join(
    f"log_type {kind}"
    for kind in ("error", "warning", "notice", "information", "subscribe")
)


class FaultBroker(Mosquitto):
    """A Mosquitto for fault scenarios: its persistence file and log really
    get written, and it can log every packet for exact delivery accounting.

    Started as root, Mosquitto drops to the ``mosquitto`` user, which cannot
    write a private (0700) pytest directory: it then runs without its
    persistence file and log.  ``user root`` keeps it as the test's user.
    ``debug``: one log line per PUBLISH received and sent (see ``forwarded``).
    """

    def __init__(
        self, workdir, port=None, persistence=True, extra_conf="", debug=False
    ):
        lines = ["user root"] if os.geteuid() == 0 else []
        lines.append(SUBSCRIBE_LOG)
        if debug:
            lines.append("log_type debug")
        lines.append(extra_conf)
        super().__init__(workdir, port, persistence, "\n".join(lines))

    @property
    def log_path(self):
        return self.workdir / "mosquitto.log"

    def log(self):
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def connects(self, client_id=None):
        """How often a client (``client_id``: that one) connected, by the log."""
        return sum(
            1
            for line in self.log().splitlines()
            if "New client connected" in line
            and (client_id is None or f" as {client_id} " in line)
        )

    def subscribed(self, client_id, start=0):
        """Filters ``client_id`` subscribed to in the log after offset ``start``."""
        out = []
        for line in self.log()[start:].splitlines():
            parts = line.split(" ")
            if len(parts) == 4 and parts[1] == client_id and parts[2] in "012":
                out.append(parts[3])
        return out

    def forwarded(self, publisher_id, subscriber_id):
        """{publisher packet id: sent on to subscriber_id?} for every PUBLISH
        the broker received from ``publisher_id`` (needs ``debug``).  An
        online subscriber's copy is logged right after the PUBLISH it copies."""
        received = f"Received PUBLISH from {publisher_id} ("
        sending = f"Sending PUBLISH to {subscriber_id} ("
        result = {}
        current = None
        for line in self.log().splitlines():
            if "Received PUBLISH from " in line:
                current = None
                if received in line:
                    current = int(line.split(received, 1)[1].split(", ")[3][1:])
                    result.setdefault(current, False)
            elif current is not None and sending in line:
                result[current] = True
        return result


def make_tls_material(directory, host="127.0.0.1"):
    """A private CA, a server certificate for ``host`` (IP SAN) and a client
    certificate, as PEM files in ``directory``; returns {name: path}."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def cert(subject, public_key, issuer, signer, extensions):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key = key()
    ca_name = name("OWM test CA")
    ca = cert(
        ca_name,
        ca_key.public_key(),
        ca_name,
        ca_key,
        [(x509.BasicConstraints(ca=True, path_length=None), True)],
    )
    try:
        san = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    server_key = key()
    server = cert(
        name(host),
        server_key.public_key(),
        ca_name,
        ca_key,
        [
            (x509.SubjectAlternativeName([san]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    client_key = key()
    client = cert(
        name("owm-runner"),
        client_key.public_key(),
        ca_name,
        ca_key,
        [(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
    )
    paths = {}
    for label, obj in (("ca", ca), ("server", server), ("client", client)):
        paths[label] = directory / f"{label}.crt"
        paths[label].write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    for label, obj in (("server_key", server_key), ("client_key", client_key)):
        paths[label] = directory / f"{label.split('_')[0]}.key"
        paths[label].write_bytes(
            obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        paths[label].chmod(0o600)
    return paths


def tls_listener_conf(port, material, require_certificate=False):
    """Mosquitto configuration lines of a TLS listener on 127.0.0.1:``port``."""
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {material['ca']}",
        f"certfile {material['server']}",
        f"keyfile {material['server_key']}",
    ]
    if require_certificate:
        lines.append("require_certificate true")
    return "\n".join(lines)


def take_over_session(port, client_id, quiet_s=1.5, timeout=30):
    """What the broker still holds for ``client_id``'s persistent session.

    Connects as that client (MQTT 5, clean start off) after its owner is gone:
    the broker sends the QoS 1 messages it kept (queued, or sent but never
    acknowledged).  Returns [(topic, payload bytes)] once nothing came for
    ``quiet_s`` seconds (at most ``timeout``).  Acknowledging them empties
    the session: a runner started afterwards would not see them.
    """
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    got = []
    last = [time.monotonic()]
    connected = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )

    def on_message(_client, _userdata, msg):
        got.append((msg.topic, bytes(msg.payload)))
        last[0] = time.monotonic()

    client.on_message = on_message
    client.on_connect = lambda *_args: connected.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0  # the session ends with this visit
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    try:
        wait_for(connected.is_set, 10, f"connected as {client_id}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and time.monotonic() - last[0] < quiet_s:
            time.sleep(0.1)
    finally:
        client.disconnect()
        client.loop_stop()
    return got
