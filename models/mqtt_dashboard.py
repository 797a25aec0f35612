# Copyright 2026 Open Workshop MQTT developers
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""The numbers behind the usage dashboard (client action ``owm_dashboard``).

Which sessions a period holds: a session belongs to the period in which it
**started** (in the reader's time zone), with all its hours, its energy and
its end reason.  Side by side, periods then count every session exactly once;
the numbers are those of the Sessions list filtered on the start time (what a
click on a machine opens); and a session does not record *when* within it the
machine worked, so cutting it at a period boundary could only guess.

- The daily series puts a session on the day it started; its days add up to
  the KPIs.
- The weekday x hour heatmap spreads a session's working hours evenly over the
  clock hours it spanned (a job from 18:00 to 21:00 shows at 18, 19 and 20), in
  the reader's time zone; its cells add up to the working-hours KPI too.
- "Running now" counts the sessions running at this moment, whenever they
  started.

Everything is aggregated in SQL (``_read_group`` and one query built on
``_search``) in the caller's environment, so access rights and record rules
(companies) apply; the cost grows with the number of machines and days, not
sessions.
"""

from datetime import date, datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from .rights import USER, guarded

PERIODS = ("today", "week", "month", "year", "custom")
AGGREGATES = [
    "__count",
    "working_duration_s:sum",
    "standby_duration_s:sum",
    "energy_wh:sum",
]


class MqttDashboard(models.AbstractModel):
    _name = "mqtt.dashboard"
    _description = "Workshop Usage Dashboard"

    @api.model
    @guarded(USER, None)
    def get_data(self, period="month", date_from=None, date_to=None):
        """Everything the dashboard shows, as plain JSON.

        :param period: ``today``, ``week`` (from Monday), ``month``, ``year`` or
            ``custom``; the first four are the ones containing today.
        :param date_from, date_to: first and last day (inclusive, ``YYYY-MM-DD``)
            of a ``custom`` period; ignored otherwise.
        """
        self._check_dashboard_access()
        tz = self._dashboard_tz()
        first_day, after_day = self._period_days(period, tz, date_from, date_to)
        start, stop = self._utc(first_day, tz), self._utc(after_day, tz)
        sessions = self.env["mqtt.session"].with_context(tz=tz)
        domain = [("start_time", ">=", start), ("start_time", "<", stop)]

        [(count, working_s, standby_s, energy_wh)] = sessions._read_group(
            domain, [], AGGREGATES
        )
        machines = self._machines(sessions, domain)
        busiest = next((m for m in machines if m["working_h"] > 0), None)
        total_s = working_s + standby_s
        return {
            "period": period,
            "tz": tz,
            "date_from": first_day.isoformat(),
            "date_to": (after_day - timedelta(days=1)).isoformat(),
            "start_utc": fields.Datetime.to_string(start),
            "stop_utc": fields.Datetime.to_string(stop),
            "kpis": {
                "sessions": count,
                "running": sessions.search_count([("state", "=", "running")]),
                "working_h": working_s / 3600.0,
                "standby_h": standby_s / 3600.0,
                "working_share": 100.0 * working_s / total_s if total_s else 0.0,
                "energy_kwh": energy_wh / 1000.0,
                "busiest_machine": busiest
                and {"id": busiest["id"], "name": busiest["name"]},
                "busiest_working_h": busiest["working_h"] if busiest else 0.0,
            },
            "machines": machines,
            "heatmap": self._heatmap(sessions, domain, tz),
            "daily": self._daily(sessions, domain, first_day, after_day, tz),
            "end_reasons": self._end_reasons(sessions, domain),
        }

    # -- access and time ------------------------------------------------------
    def _check_dashboard_access(self):
        if self.env.su or self.env.user.has_group("open_workshop_mqtt.group_user"):
            return
        raise AccessError(
            self.env._("Only workshop users may see the machine usage dashboard.")
        )

    def _dashboard_tz(self):
        """The reader's time zone, as the web client sends it (else her
        preference, else UTC): the one Odoo groups dates in."""
        tz = self.env.context.get("tz") or self.env.user.tz
        return tz if tz in pytz.all_timezones_set else "UTC"

    def _now(self):
        """Now as naive UTC (a method, so tests can move the clock)."""
        return fields.Datetime.now()

    def _period_days(self, period, tz, date_from=None, date_to=None):
        """First day of the period and the day after it, in ``tz``."""
        if period not in PERIODS:
            raise UserError(self.env._("Unknown period: %s", period))
        if period == "custom":
            if not date_from or not date_to:
                raise UserError(self.env._("A custom period needs a start and end."))
            first = fields.Date.to_date(date_from)
            last = fields.Date.to_date(date_to)
            if last < first:
                raise UserError(
                    self.env._(
                        "The period ends before it starts: %(first)s to %(last)s.",
                        first=first,
                        last=last,
                    )
                )
            return first, last + timedelta(days=1)
        today = pytz.utc.localize(self._now()).astimezone(pytz.timezone(tz)).date()
        if period == "today":
            return today, today + timedelta(days=1)
        if period == "week":
            monday = today - timedelta(days=today.weekday())
            return monday, monday + timedelta(days=7)
        if period == "month":
            first = today.replace(day=1)
            return first, (first + timedelta(days=32)).replace(day=1)
        return date(today.year, 1, 1), date(today.year + 1, 1, 1)

    @staticmethod
    def _utc(day, tz):
        """Midnight at the start of ``day`` in ``tz``, as naive UTC."""
        local = pytz.timezone(tz).localize(
            datetime.combine(day, time.min), is_dst=False
        )
        return local.astimezone(pytz.utc).replace(tzinfo=None)

    # -- the parts ------------------------------------------------------------
    def _machines(self, sessions, domain):
        types = dict(
            self.env["mqtt.device"]
            ._fields["machine_type"]
            ._description_selection(self.env)
        )
        machines = [
            {
                "id": device.id,
                "name": device.display_name,
                "machine_type": device.machine_type,
                "machine_type_label": types.get(device.machine_type, ""),
                "working_h": working_s / 3600.0,
                "standby_h": standby_s / 3600.0,
                "energy_kwh": energy_wh / 1000.0,
                "sessions": count,
            }
            for device, count, working_s, standby_s, energy_wh in sessions._read_group(
                domain, ["device_id"], AGGREGATES
            )
        ]
        # One entry per machine (a handful): the busiest first.
        machines.sort(key=lambda m: (-m["working_h"], -m["standby_h"], m["name"]))
        return machines

    def _daily(self, sessions, domain, first_day, after_day, tz):
        """Working and standby hours per day the sessions started on, every day
        of the period up to today (a period in the past: all its days)."""
        rows = sessions._read_group(
            domain,
            ["start_time:day"],
            ["working_duration_s:sum", "standby_duration_s:sum"],
        )
        by_day = {day.date(): (working, standby) for day, working, standby in rows}
        today = pytz.utc.localize(self._now()).astimezone(pytz.timezone(tz)).date()
        last = min(after_day - timedelta(days=1), max(today, *by_day, first_day))
        days = []
        day = first_day
        while day <= last:
            working, standby = by_day.get(day, (0.0, 0.0))
            days.append(
                {
                    "date": day.isoformat(),
                    "working_h": working / 3600.0,
                    "standby_h": standby / 3600.0,
                }
            )
            day += timedelta(days=1)
        return days

    def _heatmap(self, sessions, domain, tz):
        """7 x 24 working hours: ``[weekday][hour]``, Monday = 0, local time.

        Each clock hour a session overlaps gets its share of the session's
        working time (all of it for a session of no length, or one that a DST
        fold makes look so).  Times are local wall-clock seconds since
        1970-01-01, a Thursday; ``h`` numbers the clock hours from there.
        """
        query = sessions._search(domain)
        query.add_where(
            SQL("%s > 0", SQL.identifier(query.table, "working_duration_s"))
        )

        def col(name):
            return SQL.identifier(query.table, name)

        def local_seconds(utc_naive):
            return SQL(
                "date_part('epoch', timezone(%s, timezone('UTC', %s)))", tz, utc_naive
            )

        # A running session spans up to its last update.
        end_utc = SQL(
            "COALESCE(%s, CASE WHEN %s > 0 THEN timezone('UTC', to_timestamp(%s)) END,"
            " %s)",
            col("end_time"),
            col("last_update_ts"),
            col("last_update_ts"),
            col("start_time"),
        )
        spans = query.select(
            SQL("%s AS ls", local_seconds(col("start_time"))),
            SQL("%s AS le", local_seconds(end_utc)),
            SQL("%s AS w", col("working_duration_s")),
        )
        # PostgreSQL guesses 1000 rows per generate_series, so from a few
        # thousand sessions on it would JIT-compile the query (0.6 s of 0.85 s,
        # measured on 100k sessions): not for this query. A rollback undoes
        # the setting too. OFFSET 0 computes each session's span once, not
        # once per hour.
        cr = self.env.cr
        cr.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
        jit = cr.fetchone()[0]
        cr.execute(
            SQL(
                """
                SELECT mod(mod(h / 24 + 3, 7) + 7, 7), mod(mod(h, 24) + 24, 24),
                       SUM(CASE WHEN s.le > s.ls THEN
                           s.w * GREATEST(LEAST(s.le, (h + 1) * 3600::float8)
                                          - GREATEST(s.ls, h * 3600::float8), 0)
                           / (s.le - s.ls)
                       ELSE s.w END)
                  FROM (%s OFFSET 0) AS s
                 CROSS JOIN LATERAL generate_series(
                       floor(s.ls / 3600)::int,
                       floor(GREATEST(s.le, s.ls) / 3600)::int) AS h
              GROUP BY 1, 2
                """,
                spans,
            )
        )
        rows = cr.fetchall()
        cr.execute("SELECT set_config('jit', %s, true)", [jit])
        grid = [[0.0] * 24 for _day in range(7)]
        for weekday, hour, working_s in rows:
            grid[weekday][hour] = working_s / 3600.0
        return grid

    def _end_reasons(self, sessions, domain):
        """Sessions per end reason; running ones, and closed ones that carry
        no reason (older data), apart."""
        labels = dict(sessions._fields["end_reason"]._description_selection(self.env))
        labels["running"] = self.env._("Still running")
        labels["unknown"] = self.env._("Not recorded")
        counts = {}
        for reason, state, count in sessions._read_group(
            domain, ["end_reason", "state"], ["__count"]
        ):
            key = reason or ("running" if state == "running" else "unknown")
            counts[key] = counts.get(key, 0) + count
        return [
            {"reason": key, "label": labels.get(key, key), "count": count}
            for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
