# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A machine that is an equipment, fed by the real runner (flush and hook)."""

from odoo.addons.open_workshop_mqtt.tests.services.runner.common import T0, RunnerCase

# One session of the machine: 10 s standby, 30 s working, then off.
# (Defaults: standby from 20 W, working from 100 W, stop after 15 s, a
# frame at least every 20 s.)
CYCLE = (
    (0, 50.0),
    (5, 50.0),
    (10, 500.0),
    (20, 520.0),
    (30, 510.0),
    (40, 1.0),
    (50, 1.0),
    (60, 1.0),
)


class MaintenanceCase(RunnerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The workshop's people share one "today": a plan made by the manager
        # (no time zone: UTC) and checked by the cron (the superuser's,
        # Europe/Brussels) would otherwise be on different days for the hour
        # after 23:00 UTC (seen in CI at 23:44 UTC).
        cls.manager.tz = cls.env.user.tz
        # Hours of frames arrive here in a moment: no rate limit.
        (cls.device | cls.other).write({"max_msg_rate": 100_000})
        cls.equipment = cls.env["maintenance.equipment"].create(
            {
                "name": "Band saw",
                "mqtt_device_id": cls.device.id,
                "technician_user_id": cls.manager.id,
            }
        )
        cls.t = T0

    def flush(self):
        # The runner reads through its own cursor: what this test wrote
        # (a done request, a new plan) must be in the database first.
        self.env.flush_all()
        return super().flush()

    def play(self, pattern=CYCLE, prefix=None, times=1, gap=100):
        """Play ``pattern`` ``times`` over, ``gap`` seconds apart, and flush."""
        for _ in range(times):
            for dt, watts in pattern:
                self.frame(self.t + dt, watts, prefix=prefix)
            self.t += gap
        self.flush()

    def work_hours(self, hours, prefix=None):
        """One session of about ``hours`` under load (a frame every 15 s,
        within the machine's 20 s silence timeout)."""
        steps = round(hours * 240)
        for n in range(steps + 1):
            self.frame(self.t + n * 15, 500.0, prefix=prefix)
        end = self.t + steps * 15
        self.frame(end + 1, 0.0, prefix=prefix)
        self.frame(end + 17, 0.0, prefix=prefix)
        self.t = end + 100
        self.flush()
