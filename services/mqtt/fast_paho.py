"""A paho-mqtt client tuned for a subscriber that receives thousands of
messages a second (profiled in bench/ingest.py).

paho 2.2 reads ONE packet per network-loop pass for a subscriber (its packet
budget counts only its own in-flight messages), with three ``recv`` calls
per packet, and sends every PUBACK as its own write.  Here: the socket is read
in 64 KiB chunks and served from a buffer, a loop pass reads every packet
that has arrived, and the acknowledgements of a committed batch go out as one
write.  It relies on paho 2.2's internal method names (``_sock_recv``,
``_packet_read``, ``_loop_rc_handle``, ``_packet_queue``); paho-mqtt is pinned
to 2.2.0 in requirements.txt and tests/services/mqtt/test_fast_paho.py checks
them.
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

    def ack_many(self, mids: Collection[int]) -> mqtt.MQTTErrorCode:
        """Acknowledge QoS 1 messages (manual_ack) with a single socket write."""
        if not mids:
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        packet = b"".join(_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids)
        return self._packet_queue(mqtt.PUBACK, packet, 0, 0)
