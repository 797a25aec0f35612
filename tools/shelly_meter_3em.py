"""A virtual Shelly Pro 3EM (three-phase profile) for three-phase machines.

Same physics, schedule and reporting rule as the PM Mini of shelly_meter.py
(the profile's power is the machine's total); the firmware's three-phase
dialect on top (tests/fixtures/frames has the real frames it copies):

- ``em:0`` carries every phase's ``x_act_power``, ``x_voltage``,
  ``x_current``, ``x_aprt_power``, ``x_pf``, ``x_freq`` and the totals
  (``total_act_power`` with three decimals); a NotifyStatus repeats the
  whole object, as the Pro 3EM does.  The load splits over the phases by
  fixed shares near a third each (a motor's windings are never quite equal).
- ``emdata:0`` carries the counters (Wh): ``x_total_act_energy`` per phase
  and ``total_act``, sent once a minute as the firmware does.
- RPC: ``EM.GetStatus`` and ``EMData.GetStatus`` (``id`` 0) and
  ``Shelly.GetStatus``; the status topics are ``status/em:0`` and
  ``status/emdata:0``.
"""

import json
import random

try:
    from shelly_meter import Frame, Meter, _valid_prefix
except ModuleNotFoundError:  # imported as tools.shelly_meter_3em
    from tools.shelly_meter import Frame, Meter, _valid_prefix

MODEL_3EM = "shellypro3em"
PHASES = "abc"
POWER_FACTOR = 0.86  # an induction motor near its rated load


class ThreePhaseMeter(Meter):
    """One virtual Pro 3EM: ``em:0`` and ``emdata:0`` instead of ``pm1:0``."""

    component = "em:0"

    def __init__(self, device_id: str, *args, **kwargs):
        if not device_id.startswith(f"{MODEL_3EM}-"):
            raise ValueError(f"a Pro 3EM's id starts with {MODEL_3EM}-: {device_id!r}")
        super().__init__(device_id, *args, **kwargs)
        self._status_topic = f"{self.prefix}/status/em:0"
        self._data_topic = f"{self.prefix}/status/emdata:0"
        rng = random.Random(f"{self.seed}/{device_id}/phases")
        raw = [rng.uniform(0.95, 1.05) for _ in PHASES]
        self.shares = tuple(share / sum(raw) for share in raw)
        self._offsets = tuple(rng.uniform(-2.0, 2.0) for _ in PHASES)

    # -- the firmware's objects --------------------------------------------
    def _em(self) -> str:
        total = self._pd / 10
        fields = ['"id":0']
        aprt_sum = amps_sum = 0.0
        for name, share, offset in zip(PHASES, self.shares, self._offsets, strict=True):
            watts = total * share
            volts = self._vd / 10 + offset
            pf = POWER_FACTOR if watts else 0.0
            aprt = watts / pf if pf else 0.0
            amps = aprt / volts
            aprt_sum += aprt
            amps_sum += amps
            fields += [
                f'"{name}_act_power":{watts:.1f}',
                f'"{name}_aprt_power":{aprt:.1f}',
                f'"{name}_current":{amps:.3f}',
                f'"{name}_freq":50.0',
                f'"{name}_pf":{pf:.2f}',
                f'"{name}_voltage":{volts:.1f}',
            ]
        fields += [
            '"n_current":null',
            f'"total_act_power":{total:.3f}',
            f'"total_aprt_power":{aprt_sum:.3f}',
            f'"total_current":{amps_sum:.3f}',
        ]
        return "{" + ",".join(fields) + "}"

    def _emdata(self, at: float) -> str:
        energy = self.energy_wh(at)
        fields = ['"id":0']
        for name, share in zip(PHASES, self.shares, strict=True):
            fields += [
                f'"{name}_total_act_energy":{energy * share:.2f}',
                f'"{name}_total_act_ret_energy":0.00',
            ]
        fields += [f'"total_act":{energy:.2f}', '"total_act_ret":0.00']
        return "{" + ",".join(fields) + "}"

    def status_json(self, at: float | None = None) -> str:
        """The full ``em:0`` status now (the power of the last sample)."""
        self._begin()
        return self._em()

    def emdata_json(self, at: float | None = None) -> str:
        """The full ``emdata:0`` status at simulated second ``at``."""
        return self._emdata(self._at(at))

    def _device_status(self, at):
        ts = self._ts(at)
        mac = self.device_id[-12:].upper()
        return (
            f'"em:0":{self._em()},"emdata:0":{self._emdata(at)},'
            f'"mqtt":{{"connected":true}},"sys":{{"mac":"{mac}",'
            f'"restart_required":false,"unixtime":{int(ts)},'
            f'"uptime":{self._uptime0 + int(at)}}},'
            f'"wifi":{{"sta_ip":"{self._ip}","status":"got ip","rssi":{self._rssi}}}'
        )

    # -- frames -------------------------------------------------------------
    def _power_frames(self, t):
        pd, last = self._pd, self._rep_pd
        diff = abs(pd - last)
        if diff < 10 or 20 * diff < last:  # < 1 W or < 5 %: not reported
            return
        self._rep_pd, self._rep_ma, self._rep_vd = pd, self._ma, self._vd
        ts = self._ts(t)
        self.counts["notify_status"] += 1
        yield self._notify("NotifyStatus", ts, f'"em:0":{self._em()}')
        if self.status_topic:
            yield self._status_frame(t, ts)

    def _energy_frames(self, t):
        ts = self._ts(t)
        self.counts["energy"] += 1
        yield self._notify("NotifyStatus", ts, f'"emdata:0":{self._emdata(t)}')
        if self.status_topic:
            self.counts["status_topic"] += 1
            yield Frame(self._data_topic, self._emdata(t), ts)

    # -- RPC ----------------------------------------------------------------
    def reply(self, payload, at: float | None = None) -> Frame | None:
        """``EM.GetStatus``/``EMData.GetStatus`` (id 0), ``Shelly.GetStatus``;
        anything else error 404, as :meth:`Meter.reply`."""
        try:
            request = json.loads(payload)
        except (TypeError, ValueError):
            return None
        if type(request) is not dict or not _valid_prefix(request.get("src")):
            return None
        at = self._at(at)
        src = request["src"]
        method = request.get("method")
        params = request.get("params")
        rid, me, dst = (json.dumps(v) for v in (request.get("id"), self.device_id, src))
        head = f'{{"id":{rid},"src":{me},"dst":{dst},'
        if method in ("EM.GetStatus", "EMData.GetStatus"):
            index = params.get("id", 0) if type(params) is dict else 0
            if index == 0 and type(index) is int:
                result = self._em() if method == "EM.GetStatus" else self._emdata(at)
                body = f'"result":{result}}}'
            else:
                message = f"Argument 'id', value {json.dumps(index)} not found!"
                body = self._error(-105, message)
        elif method == "Shelly.GetStatus":
            body = f'"result":{{{self._device_status(at)}}}}}'
        else:
            body = self._error(404, f"No handler for {method}")
        self.counts["rpc_reply" if body[1] == "r" else "rpc_error"] += 1
        return Frame(f"{src}/rpc", head + body, self._ts(at))


def make_meter(device_id: str, profile="laser", prefix=None, **kwargs) -> Meter:
    """The virtual meter of the device's model: a Pro 3EM or a PM Mini."""
    cls = ThreePhaseMeter if device_id.startswith(f"{MODEL_3EM}-") else Meter
    return cls(device_id, profile, prefix, **kwargs)
