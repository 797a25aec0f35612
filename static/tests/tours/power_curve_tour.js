/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A session's power curve: the test (tests/browser/test_tour_power_curve.py)
// records a machine's power history through the runner's engine and writer
// and opens the session's form; the chart is drawn from the history with
// both thresholds and the working span, and the machine's form shows its
// last 24 hours the same way.

import { registry } from "@web/core/registry";

function curveDrawn(what) {
    return {
        content: `${what}: the power curve is drawn with both thresholds`,
        trigger: ".o_owm_power_curve canvas",
        run() {
            const chart = Chart.getChart(this.anchor);
            if (!chart) {
                throw new Error("no chart");
            }
            const [power, standby, working] = chart.data.datasets;
            const watts = new Set(power.data.map((p) => p.y));
            if (!watts.has(650) || !watts.has(0)) {
                throw new Error(`the power line lacks its readings: ${[...watts]}`);
            }
            if (standby.data[0].y !== 20 || working.data[0].y !== 100) {
                throw new Error("the thresholds are not drawn at 20 W and 100 W");
            }
            const spans = chart.options.plugins.owmSpans.spans;
            if (!spans.some(([from, to, state]) => state === "working" && to > from)) {
                throw new Error("no working span shaded");
            }
        },
    };
}

registry.category("web_tour.tours").add("owm_power_curve_tour", {
    steps: () => [
        curveDrawn("the session"),
        {
            content: "the thresholds are named under the chart",
            trigger: ".o_owm_power_curve:contains(Standby from 20 W, working from 100 W)",
        },
        {
            content: "the stop delay and the time without data are named in the legend",
            trigger: ".o_owm_power_curve_legend:contains(Stop delay (counted as standby)):contains(No data)",
        },
        {
            content: "the time axis is marked at round times",
            trigger: ".o_owm_power_curve canvas",
            run() {
                const chart = Chart.getChart(this.anchor);
                const ticks = chart.scales.x.ticks.map((t) => t.value);
                const odd = ticks.filter((t) => new Date(t).getSeconds() !== 0);
                if (!ticks.length || odd.length) {
                    throw new Error(`ticks off round times: ${odd.map((t) => new Date(t))}`);
                }
            },
        },
        {
            content: "the exact values read as times, not as numbers",
            trigger: ".o_notebook .nav-link:contains(Exact Values)",
            run: "click",
        },
        {
            content: "the start to the hundredth of a second",
            trigger: ".o_field_widget[name=start_exact]:contains(/\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d\\d/)",
        },
        {
            content: "open the machine",
            trigger: ".o_field_widget[name=device_id] a, .o_field_widget[name=device_id] .o_form_uri",
            run: "click",
        },
        curveDrawn("the machine's last 24 hours"),
    ],
});
