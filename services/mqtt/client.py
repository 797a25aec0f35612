"""paho-mqtt 2.x wrapper: one broker connection, no Odoo.

Why a wrapper and not paho's own ``loop_start``:

* our own network thread runs the reconnect loop, so the backoff is the
  configurable ``min x factor .. max`` of the product (paho only doubles);
* every (re)connect resubscribes everything we want, whatever the broker
  remembered;
* QoS 1 messages are acknowledged by the *caller* after its database commit
  (``manual_ack``), so a crash between receive and commit loses nothing: the
  broker redelivers.  MQTT 5 ``Receive Maximum`` bounds the unacknowledged
  messages, and so the runner's queue of messages not yet written;
* messages carry the connection ``generation``: an ack for a message of an
  earlier network connection is not sent (the broker redelivers it anyway).
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .backoff import Backoff
from .connect import (
    ClientSettings,
    SocketErrorSink,
    connect_properties,
    new_paho,
    remember_socket_error,
)
from .fast_paho import FastClient
from .inbound import InboundMessage
from .texts import (
    Text,
    describe_connack,
    describe_exception,
    describe_lost,
    disconnected_by_broker,
    retrying,
)

_logger = logging.getLogger(__name__)

STOPPED = "stopped"
CONNECTING = "connecting"
CONNECTED = "connected"
ERROR = "error"


class _Outcome(SocketErrorSink, total=False):
    """What the callbacks of one network session learnt (``_run_once``)."""

    connacked: bool
    closed: bool
    error: Text


class MqttClient:
    """One broker connection with its own network thread.

    ``handler(msg: InboundMessage)`` is called on the network thread for every
    message (the runner only enqueues it there; MQTT 5 Receive Maximum bounds
    how many are unacknowledged).  ``on_state(state, error_text)`` reports
    stopped/connecting/connected/error.
    """

    def __init__(
        self,
        settings: ClientSettings,
        handler: Callable[[InboundMessage], None],
        on_state: Callable[[str, Text | None], None] | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or settings.client_id
        self._handler = handler
        self._on_state = on_state
        self._persistent = settings.qos > 0 and settings.session_expiry_s > 0
        self.generation = 0
        self.session_present = False
        self.state = STOPPED
        self.last_error: Text | None = None
        self._subscriptions: dict[str, int] = {}  # filter -> qos
        self._sub_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: FastClient | None = None
        self._connected = threading.Event()
        self._backoff = Backoff(
            settings.reconnect_min_s,
            settings.reconnect_max_s,
            settings.reconnect_factor,
        )

    # -- public API -------------------------------------------------------
    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"owm-mqtt-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        client = self._client
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # pylint: disable=broad-except
                _logger.debug("disconnect failed", exc_info=True)
        if self._thread:
            self._thread.join(timeout)
        self._set_state(STOPPED, None)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def set_subscriptions(self, filters: Iterable[str]) -> None:
        """Subscribe exactly ``filters``: applied now and again on every connect."""
        qos = self.settings.qos
        with self._sub_lock:
            wanted = {f: qos for f in filters}
            added = [f for f in wanted if f not in self._subscriptions]
            removed = [f for f in self._subscriptions if f not in wanted]
            self._subscriptions = wanted
        if self._connected.is_set() and self._client is not None:
            self._send_subscribe(self._client, added)
            if removed:
                for chunk in _chunks(removed, 100):
                    self._client.unsubscribe(chunk)

    def ack_many(self, msgs: Iterable[InboundMessage]) -> list[InboundMessage]:
        """Acknowledge committed QoS 1 messages in one write; return the acked.

        Messages of an earlier network session are not acknowledged: the
        broker sends them again (DUP) and the runner recognises them."""
        client = self._client
        if client is None or not self._connected.is_set():
            return []
        generation = self.generation
        acked = [m for m in msgs if m.qos and m.generation == generation]
        if client.ack_many([m.mid for m in acked]) != mqtt.MQTT_ERR_SUCCESS:
            return []
        return acked

    def publish(self, topic: str, payload: mqtt.PayloadType, qos: int = 0) -> bool:
        client = self._client
        if client is None or not self._connected.is_set():
            return False
        return client.publish(topic, payload, qos=qos).rc == mqtt.MQTT_ERR_SUCCESS

    # -- network thread ---------------------------------------------------
    def _set_state(self, state: str, error: Text | None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        if self._on_state:
            try:
                self._on_state(state, error)
            except Exception:  # pylint: disable=broad-except
                _logger.exception("MQTT %s: state callback failed", self.name)

    def _run(self) -> None:
        while not self._stop.is_set():
            error = self._run_once()
            if self._stop.is_set():
                break
            delay = self._backoff.next()
            msg = retrying(error, delay) if error else None
            self._set_state(ERROR if error else CONNECTING, msg)
            if error:
                _logger.warning("MQTT %s: %s", self.name, msg)
            self._stop.wait(delay)

    def _run_once(self) -> Text | None:
        """One network session: connect, loop until it ends; return an error text."""
        settings = self.settings
        self._set_state(CONNECTING, None)
        outcome: _Outcome = {}
        try:
            client = new_paho(settings, settings.client_id, manual_ack=True)
        except Exception as exc:  # bad TLS material and the like
            return describe_exception(exc, settings)
        client.on_connect = self._make_on_connect(outcome)
        client.on_message = self._on_message
        if isinstance(client, FastClient):
            client.on_inbound = self._on_inbound
        client.on_disconnect = self._make_on_disconnect(outcome)
        client.on_log = remember_socket_error(outcome)
        self._client = client
        try:
            client.connect(
                settings.host,
                settings.port,
                keepalive=settings.keepalive,
                clean_start=not self._persistent,
                properties=connect_properties(settings, self._persistent),
            )
            while not self._stop.is_set():
                rc = client.loop(timeout=0.2)
                while rc == mqtt.MQTT_ERR_SUCCESS and client.buffered():
                    rc = client.loop_read()  # read already, not yet parsed
                if rc != mqtt.MQTT_ERR_SUCCESS or outcome.get("closed"):
                    break
        except Exception as exc:  # network and TLS failures
            outcome.setdefault("error", describe_exception(exc, settings))
        finally:
            self._connected.clear()
            try:
                client.disconnect()
            except Exception:  # pylint: disable=broad-except
                _logger.debug("disconnect after loop failed", exc_info=True)
        if self._stop.is_set():
            return None
        return outcome.get("error") or describe_lost(
            settings,
            outcome.get("socket_error"),
            before_connack=not outcome.get("connacked"),
        )

    def _make_on_connect(self, outcome: _Outcome) -> mqtt.CallbackOnConnect_v2:
        def on_connect(
            client: mqtt.Client,
            userdata: Any,
            flags: mqtt.ConnectFlags,
            reason_code: ReasonCode,
            properties: Properties | None,
        ) -> None:
            outcome["connacked"] = True
            if reason_code.is_failure:
                outcome["error"] = describe_connack(reason_code)
                outcome["closed"] = True
                return
            self.generation += 1
            self.session_present = bool(flags.session_present)
            self._backoff.reset()
            with self._sub_lock:
                filters = list(self._subscriptions)
            self._send_subscribe(client, filters)
            self._connected.set()
            _logger.info(
                "MQTT %s: connected to %s (session present: %s), %d subscriptions",
                self.name,
                self.settings.address,
                flags.session_present,
                len(filters),
            )
            self._set_state(CONNECTED, None)

        return on_connect

    def _make_on_disconnect(self, outcome: _Outcome) -> mqtt.CallbackOnDisconnect_v2:
        def on_disconnect(
            client: mqtt.Client,
            userdata: Any,
            flags: mqtt.DisconnectFlags,
            reason_code: ReasonCode,
            properties: Properties | None,
        ) -> None:
            self._connected.clear()
            outcome["closed"] = True
            # paho also calls this when the socket broke ("Unspecified error"):
            # only a DISCONNECT the broker sent is the broker's word.
            if (
                flags.is_disconnect_packet_from_server
                and isinstance(reason_code, ReasonCode)
                and reason_code.is_failure
            ):
                outcome.setdefault("error", disconnected_by_broker(reason_code))

        return on_disconnect

    def _send_subscribe(self, client: mqtt.Client, filters: Iterable[str]) -> None:
        qos = self.settings.qos
        for chunk in _chunks(filters, 100):
            client.subscribe([(f, qos) for f in chunk])

    def _on_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        """A message by paho's own path (FastClient's goes to _on_inbound)."""
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = message._topic.decode("utf-8", "replace")  # pylint: disable=protected-access
        self._on_inbound(
            topic,
            # paho types it bytes | bytearray; a received PUBLISH's payload
            # comes from struct.unpack, so bytes (no cast on this hot path).
            message.payload,  # type: ignore[arg-type]
            message.qos,
            message.mid,
            bool(message.dup),
            bool(message.retain),
        )

    def _on_inbound(
        self, topic: str, payload: bytes, qos: int, mid: int, dup: bool, retain: bool
    ) -> None:
        try:
            msg = InboundMessage(
                topic, payload, qos, mid, dup, retain, time.time(), self.generation
            )
            self._handler(msg)
        except Exception:  # the network thread must survive any message
            _logger.exception("MQTT %s: message handling failed", self.name)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]
