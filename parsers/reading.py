"""The value that crosses from parsing into detection: one meter reading.

Frozen and slotted: it is created once per message on the MQTT network
thread and handed to the database runner, so it must be cheap and immutable.
"""

from dataclasses import dataclass
from typing import Final

# Where ``Reading.ts`` came from: the meter's own synced clock, receive time
# moved onto it with the learned offset, or receive time alone.
TS_DEVICE: Final = "device"  # the frame's own synced ``params.ts``
TS_OFFSET: Final = "offset"  # receive time moved onto the device clock (learned offset)
TS_RECEIVED: Final = "received"  # receive time (no synced device clock known)
# The frame's device time was not believed (a clock far ahead or behind the
# receive clock, ``Limits``): receive time, on the learned offset when known.
TS_NOT_BELIEVED: Final = "not_believed"


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement (or online/offline notice) of one meter.

    ``power_w`` is ``None`` when the frame carries no power (an online notice,
    an energy-only frame before any power was known, a meter error): the
    engine then feeds the state machine nothing, and keeps the counter of an
    energy-only frame for the machine's form.  ``energy_wh`` is the meter's
    cumulative counter in Wh, when the frame carried a fresh one.
    """

    ts: float
    received_at: float
    power_w: float | None = None
    energy_wh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    online: bool | None = None
    meter_errors: tuple[str, ...] = ()
    device_key: str = ""
    ts_source: str = TS_RECEIVED
    source: str = ""
