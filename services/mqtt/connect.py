"""Opening one broker connection: settings, TLS context, the paho client and
its MQTT 5 CONNECT properties, and a one-shot probe for the form's test button.

Kept apart from the long-lived client (client.py) so the things an
administrator gets wrong (address, credentials, certificates) are in one
place, each failure explained in plain words (texts.py).  No Odoo.
"""

import logging
import os
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, overload

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .fast_paho import FastClient
from .texts import (
    Text,
    connected,
    describe_connack,
    describe_exception,
    describe_lost,
    no_answer,
)

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientSettings:
    """Everything needed to talk to one broker; secrets never in ``repr``."""

    host: str
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive: int = 60
    qos: int = 1
    session_expiry_s: int = 86400
    use_tls: bool = False
    tls_verify: bool = True
    tls_ca_pem: str | None = field(default=None, repr=False)
    tls_cert_pem: str | None = field(default=None, repr=False)
    tls_key_pem: str | None = field(default=None, repr=False)
    reconnect_min_s: float = 5.0
    reconnect_max_s: float = 300.0
    reconnect_factor: float = 1.5
    receive_maximum: int = 20000
    connect_timeout_s: float = 5.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class SocketErrorSink(TypedDict, total=False):
    """Where ``remember_socket_error`` puts the reason a socket broke."""

    socket_error: str


class _ProbeResult(SocketErrorSink, total=False):
    rc: ReasonCode


def remember_socket_error(sink: SocketErrorSink) -> mqtt.CallbackOnLog:
    """An ``on_log`` keeping the reason paho gives when a socket breaks."""

    def on_log(client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
        if level == mqtt.MQTT_LOG_ERR and "on socket: " in buf:
            sink["socket_error"] = buf.split("on socket: ", 1)[1][:300]

    return on_log


def build_ssl_context(settings: ClientSettings) -> ssl.SSLContext:
    """TLS context from PEM text: verification on unless explicitly off."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.tls_verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if settings.tls_ca_pem:
            ctx.load_verify_locations(cadata=settings.tls_ca_pem)
        else:
            ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if settings.tls_cert_pem:
        # load_cert_chain only reads files: use a private, short-lived directory.
        with tempfile.TemporaryDirectory(prefix="owm-tls-") as tmp:
            cert = os.path.join(tmp, "client.crt")
            key = os.path.join(tmp, "client.key")
            for path, text in (
                (cert, settings.tls_cert_pem),
                (key, settings.tls_key_pem),
            ):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(text or "")
            ctx.load_cert_chain(cert, key if settings.tls_key_pem else None)
    return ctx


@overload
def new_paho(
    settings: ClientSettings, client_id: str, manual_ack: Literal[True]
) -> FastClient: ...
@overload
def new_paho(
    settings: ClientSettings, client_id: str, manual_ack: Literal[False]
) -> mqtt.Client: ...
def new_paho(settings: ClientSettings, client_id: str, manual_ack: bool) -> mqtt.Client:
    # The runner's client (manual acks) is the tuned one; a probe is plain paho.
    client = (FastClient if manual_ack else mqtt.Client)(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
        manual_ack=manual_ack,
    )
    client.connect_timeout = settings.connect_timeout_s
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.use_tls:
        client.tls_set_context(build_ssl_context(settings))
    return client


def connect_properties(settings: ClientSettings, persistent: bool) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = max(1, min(65535, settings.receive_maximum))
    if persistent:
        props.SessionExpiryInterval = settings.session_expiry_s
    return props


def probe_broker(settings: ClientSettings, timeout: float = 5.0) -> tuple[bool, Text]:
    """Connect once with a throw-away client id; return (ok, plain message).

    Uses its own client id so the connection's persistent session is not touched.
    """
    result: _ProbeResult = {}
    done = threading.Event()

    def on_connect(
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        result["rc"] = reason_code
        done.set()

    client: mqtt.Client | None = None
    started = time.monotonic()
    try:
        client = new_paho(settings, f"{settings.client_id or 'owm'}-probe", False)
        client.on_connect = on_connect
        client.on_log = remember_socket_error(result)
        client.connect(
            settings.host,
            settings.port,
            keepalive=max(5, int(timeout) + 5),
            clean_start=True,
            properties=connect_properties(settings, False),
        )
        deadline = started + timeout
        while not done.is_set() and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS and not done.is_set():
                error = result.get("socket_error")
                return False, describe_lost(settings, error, before_connack=True)
    except Exception as exc:  # report every failure in plain words
        return False, describe_exception(exc, settings)
    finally:
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # pylint: disable=broad-except
                _logger.debug("probe disconnect failed", exc_info=True)
    if not done.is_set():
        return False, no_answer(settings, timeout)
    rc = result["rc"]
    if rc.is_failure:
        return False, describe_connack(rc)
    ms = (time.monotonic() - started) * 1000
    return True, connected(settings, ms)
