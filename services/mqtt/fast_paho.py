"""A paho-mqtt client tuned for a subscriber that receives thousands of
messages a second (profiled in bench/ingest.py).

paho 2.2 reads ONE packet per network-loop pass for a subscriber (its packet
budget counts only its own in-flight messages), with three ``recv`` calls
per packet, and sends every PUBACK as its own write.  Here: the socket is read
in 64 KiB chunks and served from a buffer, a loop pass reads every packet
that has arrived, the acknowledgements of a committed batch go out as one
write, and paho's per-packet debug lines are not formatted (with an
``on_log`` set, paho formats each one, the message's properties included), nor is a
topic tree of per-topic callbacks walked when there are none.
It relies on paho 2.2's internal names (``_sock_recv``, ``_packet_read``,
``_loop_rc_handle``, ``_packet_queue``, ``_easy_log``,
``_handle_on_message``, ``_on_message_filtered``, ``_in_callback_mutex``);
paho-mqtt is pinned to 2.2.0 in requirements.txt and
tests/services/mqtt/test_fast_paho.py checks them.
"""

import struct
from collections.abc import Collection
from typing import Any

import paho.mqtt.client as mqtt

READ_CHUNK = 65536
MAX_PACKETS_PER_PASS = 1000
_PUBACK = struct.Struct("!BBH")


class FastClient(mqtt.Client):
    """paho ``Client`` with buffered reads and batched PUBACKs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf: bytes = b""
        self._rpos: int = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError: nothing there
            if not data:
                return data  # the broker closed the connection
            self._rbuf = data
            self._rpos = 0
        start = self._rpos
        self._rpos = start + bufsize
        return self._rbuf[start : self._rpos]

    def buffered(self) -> bool:
        """Bytes already read from the socket but not yet parsed?"""
        return self._rpos < len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """Read every packet that has arrived (paho would read one)."""
        for _ in range(max(max_packets, MAX_PACKETS_PER_PASS)):
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _easy_log(self, level: mqtt.LogLevel, fmt: str, *args: Any) -> None:
        # Debug lines are per packet; nobody here reads them (on_log keeps
        # only a socket error, logged at MQTT_LOG_ERR).
        if level == mqtt.MQTT_LOG_DEBUG:
            return None
        return super()._easy_log(level, fmt, *args)

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # With no per-topic callback (message_callback_add), paho still walks
        # its topic tree for every message: hand it to on_message directly.
        if self._on_message_filtered._root._children:
            return super()._handle_on_message(message)
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)
        return None

    def ack_many(self, mids: Collection[int]) -> mqtt.MQTTErrorCode:
        """Acknowledge QoS 1 messages (manual_ack) with a single socket write."""
        if not mids:
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        packet = b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids)
        return self._packet_queue(mqtt.PUBACK, packet, 0, 0)
