"""A paho-mqtt client tuned for a subscriber that receives thousands of
messages a second (profiled in bench/ingest.py).

paho 2.2 reads ONE packet per network-loop pass for a subscriber (its packet
budget counts only its own in-flight messages), with three ``recv`` calls
per packet, and sends every PUBACK as its own write.  Here: the socket is read
in 64 KiB chunks and served from a buffer, a loop pass reads every packet
that has arrived, the acknowledgements of a committed batch go out as one
write, and paho's per-packet debug lines are not formatted (with an
``on_log`` set, paho formats each one, the message's properties included), nor is a
topic tree of per-topic callbacks walked when there are none.  A PUBLISH
whole in the buffer goes straight to ``on_inbound`` (when set) as plain
values: paho builds a message object, its info object with a condition
variable, and decodes the MQTT 5 properties, none of which a subscriber
acknowledging by hand reads (two thirds of the network thread's CPU in the
benchmark's profile); one not yet whole tops the buffer up with one read
first.  Anything else (a packet still not whole, QoS 2, a per-topic
callback, a malformed packet, a socket error) takes paho's own path; what
the socket answered that one read with (a TLS alert, a reset, the close) is
what paho's own read meets next, so it is reported as paho reports it.
It relies on paho 2.2's internal names (``_sock_recv``, ``_packet_read``,
``_loop_rc_handle``, ``_packet_queue``, ``_easy_log``,
``_handle_on_message``, ``_on_message_filtered``, ``_in_callback_mutex``,
``_in_packet``, ``_manual_ack``, ``_protocol``, ``_msgtime_mutex``,
``_last_bytes_received``, ``time_func``);
paho-mqtt is pinned to 2.2.0 in requirements.txt and
tests/services/mqtt/test_fast_paho.py checks them.
"""

import struct
from collections.abc import Callable, Collection
from typing import Any

import paho.mqtt.client as mqtt

READ_CHUNK = 65536
MAX_PACKETS_PER_PASS = 1000
_PUBACK = struct.Struct("!BBH")
_PUBLISH = mqtt.PUBLISH  # 0x30
_NOT_WHOLE: tuple[int, ...] = ()
# (topic, payload, qos, mid, dup, retain)
InboundSink = Callable[[str, bytes, int, int, bool, bool], None]


class FastClient(mqtt.Client):
    """paho ``Client`` with buffered reads and batched PUBACKs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf: bytes = b""
        self._rpos: int = 0
        self.on_inbound: InboundSink | None = None
        # What the socket answered a top-up read of the buffered path with
        # (an error, or b"" when the broker closed it): paho's own read meets
        # it next, and reports it as it would have (on_log keeps the reason).
        self._read_outcome: OSError | bytes | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            outcome = self._read_outcome
            if outcome is not None:
                self._read_outcome = None
                if isinstance(outcome, OSError):
                    raise outcome
                return outcome
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

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        if self._in_packet["command"] == 0 and self.on_inbound is not None:
            rc = self._buffered_publish()
            if rc is not None:
                return rc
        return super()._packet_read()

    def _buffered_publish(self) -> mqtt.MQTTErrorCode | None:
        """Deliver the PUBLISH at the buffer's read position to ``on_inbound``
        when it is QoS 0 or 1 and well formed, reading the socket once when
        it is not whole yet; None (nothing consumed) for paho's own path."""
        if not self._manual_ack or self._on_message_filtered._root._children:
            return None
        found = self._whole_publish()
        if found is None:
            return None
        if found is _NOT_WHOLE:  # top the buffer up once
            try:
                data = mqtt.Client._sock_recv(self, READ_CHUNK)  # the socket
            except BlockingIOError:
                # Nothing came.  An empty buffer: read again later; a part of
                # a packet: paho's path keeps it in its own state (so
                # ``buffered()`` turns false and the caller waits for data).
                return (
                    mqtt.MQTTErrorCode.MQTT_ERR_AGAIN if not self.buffered() else None
                )
            except OSError as exc:  # a TLS alert, a reset: paho's path reports it
                self._read_outcome = exc
                return None
            if not data:  # closed: paho's path says so
                self._read_outcome = data
                return None
            self._rbuf = self._rbuf[self._rpos :] + data
            self._rpos = 0
            found = self._whole_publish()
            if not found:
                return None
        buf = self._rbuf
        cmd, topic_at, tlen, mid, payload_at, stop = found
        self._rpos = stop
        topic = buf[topic_at : topic_at + tlen].decode("utf-8", "replace")
        with self._in_callback_mutex:
            self.on_inbound(  # type: ignore[misc]
                topic,
                buf[payload_at:stop],
                (cmd & 0x06) >> 1,
                mid,
                bool(cmd & 0x08),
                bool(cmd & 0x01),
            )
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _whole_publish(self) -> tuple[int, ...] | None:
        """The PUBLISH at the read position: (command, topic start, topic
        length, mid, payload start, end) when whole; ``_NOT_WHOLE`` when not
        all here yet; None when it is for paho's path (not a PUBLISH of QoS
        0 or 1, not well formed)."""
        buf, pos = self._rbuf, self._rpos
        end = len(buf)
        if pos >= end:
            return _NOT_WHOLE
        cmd = buf[pos]
        if cmd & 0xF0 != _PUBLISH or cmd & 0x06 > 0x02:
            return None
        length, i = _varint(buf, pos + 1, end)
        if length < 0:
            return _NOT_WHOLE if length == -1 else None
        stop = i + length
        if stop > end:
            return _NOT_WHOLE
        if length < 2:
            return None
        tlen = (buf[i] << 8) | buf[i + 1]
        j = i + 2 + tlen
        mid = 0
        if cmd & 0x06:
            if j + 2 > stop:
                return None
            mid = (buf[j] << 8) | buf[j + 1]
            j += 2
        if self._protocol == mqtt.MQTTv5:
            plen, j = _varint(buf, j, stop)  # the properties: skipped unread
            if plen < 0:
                return None
            j += plen
        elif not tlen:
            return None  # an empty topic: paho refuses it (MQTT 3)
        if j > stop:
            return None
        return cmd, i + 2, tlen, mid, j, stop

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


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    """MQTT's variable byte integer at ``buf[i:end]``: (value, index after
    it); the value is -1 when it runs past ``end``, -2 when it is longer than
    the 4 bytes allowed."""
    value, mult = 0, 1
    for k in range(i, min(i + 4, end)):
        byte = buf[k]
        value += (byte & 0x7F) * mult
        if not byte & 0x80:
            return value, k + 1
        mult *= 128
    return (-1 if end < i + 4 else -2), i
