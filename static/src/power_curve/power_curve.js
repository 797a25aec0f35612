/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A machine's power over time, from its stored power history: on a session's
// form the session (with a margin), on a machine's form the last 24 hours.
// A step line (a meter's reading holds until the next), the standby and
// working thresholds as dashed lines, and the spans the state machine spent
// in standby and working shaded.  The server thins the line to a few hundred
// buckets, keeping each bucket's lowest and highest power
// (models/mqtt_device_history.py), so an 8-hour session at one reading a
// second draws as quickly as a short one.

import { Component, onWillStart, useEffect, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { STANDBY_COLOR, WORKING_COLOR } from "../dashboard/dashboard";

const { DateTime } = luxon;

// What each shaded span is (the legend below the chart says the same).
export const SPAN_COLORS = {
    working: "rgba(46,125,50,0.13)",
    standby: "rgba(249,168,37,0.16)",
    // The stop delay: the power is below the standby threshold, but the
    // session goes on (and counts it as standby) until the delay runs out.
    stopping: "rgba(21,101,192,0.10)",
    nodata: "rgba(120,120,120,0.18)",
};

// Round steps for the time axis: ticks fall on whole minutes and hours.
const TICK_STEPS_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

/** Ticks at round local times between ``from`` and ``to`` (ms), at most ``max``. */
export function roundTicks(from, to, max = 8) {
    const minutes = (to - from) / 60000;
    const step = TICK_STEPS_MIN.find((m) => minutes / m <= max) || 1440;
    let t = DateTime.fromMillis(from).startOf("day");
    const ticks = [];
    while (t.toMillis() <= to) {
        if (t.toMillis() >= from) {
            ticks.push({ value: t.toMillis() });
        }
        t = t.plus({ minutes: step });
    }
    return { ticks, step };
}

const spanPlugin = {
    id: "owmSpans",
    beforeDatasetsDraw(chart, _args, options) {
        const { ctx, chartArea, scales } = chart;
        ctx.save();
        for (const [from, to, state] of options.spans || []) {
            const left = Math.max(scales.x.getPixelForValue(from), chartArea.left);
            const right = Math.min(scales.x.getPixelForValue(to), chartArea.right);
            if (right <= left) {
                continue;
            }
            ctx.fillStyle = SPAN_COLORS[state] || SPAN_COLORS.standby;
            ctx.fillRect(left, chartArea.top, right - left, chartArea.bottom - chartArea.top);
        }
        ctx.restore();
    },
};

export class PowerCurve extends Component {
    static template = "open_workshop_mqtt.PowerCurve";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.canvasRef = useRef("canvas");
        this.state = useState({ curve: null, error: null });
        onWillStart(async () => {
            await loadBundle("web.chartjs_lib");
            await this.load();
        });
        useEffect(
            (curve) => {
                if (!curve || curve.empty || !this.canvasRef.el) {
                    return;
                }
                const chart = new Chart(this.canvasRef.el, this.config(curve));
                return () => chart.destroy();
            },
            () => [this.state.curve]
        );
    }

    async load() {
        const { resModel, resId } = this.props.record;
        if (!resId) {
            return;
        }
        try {
            this.state.curve = await this.orm.call(resModel, "get_power_curve", [[resId]]);
        } catch (error) {
            this.state.error = error.message || String(error);
        }
    }

    get summary() {
        const curve = this.state.curve;
        return _t("Standby from %(standby)s W, working from %(working)s W", {
            standby: curve.standby_w,
            working: curve.working_w,
        });
    }

    get stopTitle() {
        return _t(
            "After the power drops below the standby threshold, the session waits %s s for it to come back before it ends; that wait counts as standby.",
            this.state.curve.stop_delay_s
        );
    }

    config(curve) {
        const { step } = roundTicks(curve.from, curve.to);
        const tickFormat = step >= 1440 ? "ccc dd" : "HH:mm";
        const format = (value) => DateTime.fromMillis(value).toFormat("HH:mm:ss");
        const flat = (watts) => [
            { x: curve.from, y: watts },
            { x: curve.to, y: watts },
        ];
        return {
            type: "line",
            data: {
                datasets: [
                    {
                        label: _t("Power (W)"),
                        data: curve.points.map(([x, y]) => ({ x, y })),
                        // A reading holds until the next; a null breaks the line.
                        stepped: "after",
                        spanGaps: false,
                        borderColor: "#1565c0",
                        borderWidth: 1.5,
                        pointRadius: 0,
                        fill: false,
                    },
                    {
                        label: _t("Standby threshold"),
                        data: flat(curve.standby_w),
                        borderColor: STANDBY_COLOR,
                        borderDash: [6, 4],
                        borderWidth: 1,
                        pointRadius: 0,
                    },
                    {
                        label: _t("Working threshold"),
                        data: flat(curve.working_w),
                        borderColor: WORKING_COLOR,
                        borderDash: [6, 4],
                        borderWidth: 1,
                        pointRadius: 0,
                    },
                ],
            },
            options: {
                animation: false,
                maintainAspectRatio: false,
                parsing: false,
                normalized: true,
                scales: {
                    x: {
                        type: "linear",
                        min: curve.from,
                        max: curve.to,
                        afterBuildTicks: (axis) => {
                            axis.ticks = roundTicks(curve.from, curve.to).ticks;
                        },
                        ticks: {
                            callback: (value) => DateTime.fromMillis(value).toFormat(tickFormat),
                        },
                    },
                    y: { beginAtZero: true, title: { display: true, text: "W" } },
                },
                plugins: {
                    owmSpans: { spans: curve.spans },
                    tooltip: {
                        callbacks: { title: (items) => format(items[0].parsed.x) },
                    },
                    legend: { position: "bottom" },
                },
            },
            plugins: [spanPlugin],
        };
    }
}

registry.category("view_widgets").add("owm_power_curve", { component: PowerCurve });
