/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A manager opens Workshop > Analytics > Dashboard, reads the KPI cards, sees
// the charts and the heatmap, switches the period and clicks a machine's bar
// to land on its sessions. The test (tests/test_dashboard.py) seeds the
// sessions and sets the dashboard's clock to Wednesday 18 March 2026, 10:00.

import { registry } from "@web/core/registry";

function kpi(key, value) {
    return {
        content: `KPI ${key} is ${value}`,
        trigger: `.o_owm_kpi[data-kpi="${key}"] .o_owm_kpi_value:contains(/^${value}$/)`,
    };
}

function chartDrawn(name) {
    return {
        content: `the ${name} chart is drawn`,
        trigger: `.o_owm_chart[data-chart="${name}"] canvas`,
        run() {
            const chart = Chart.getChart(this.anchor);
            if (!chart || !chart.data.datasets[0].data.length) {
                throw new Error(`no ${name} chart`);
            }
        },
    };
}

/** Click the middle of a machine's "working" bar, as a person would. */
function clickMachineBar(machine) {
    return {
        content: `click the bar of ${machine}`,
        trigger: '.o_owm_chart[data-chart="machines"] canvas',
        run() {
            const canvas = this.anchor;
            const chart = Chart.getChart(canvas);
            const index = chart.data.labels.indexOf(machine);
            if (index < 0) {
                throw new Error(`${machine} is not in the chart`);
            }
            const bar = chart.getDatasetMeta(0).data[index];
            const { x, y, base } = bar.getProps(["x", "y", "base"], true);
            const rect = canvas.getBoundingClientRect();
            const clientX = rect.left + (x + base) / 2;
            const clientY = rect.top + y;
            for (const type of ["mousemove", "click"]) {
                canvas.dispatchEvent(
                    new MouseEvent(type, { clientX, clientY, bubbles: true, cancelable: true })
                );
            }
        },
    };
}

registry.category("web_tour.tours").add("owm_dashboard_tour", {
    url: "/odoo/action-open_workshop_mqtt.mqtt_session_action",
    steps: () => [
        {
            trigger: 'button[data-menu-xmlid="open_workshop_mqtt.mqtt_session_menu_analysis"]',
            run: "click",
        },
        {
            trigger: '.dropdown-item[data-menu-xmlid="open_workshop_mqtt.mqtt_dashboard_menu"]',
            run: "click",
        },
        // This month, the default.
        { trigger: '.o_owm_periods button.active[data-period="month"]' },
        kpi("sessions", "4"),
        kpi("running", "0"),
        kpi("working", "3.2 h"),
        kpi("standby", "1.3 h"),
        kpi("share", "70.4 %"),
        kpi("energy", "5.20 kWh"),
        kpi("busiest", "Tour Laser"),
        {
            trigger: '.o_owm_kpi[data-kpi="busiest"] .o_owm_kpi_detail:contains(/^2.3 h$/)',
        },
        chartDrawn("machines"),
        chartDrawn("daily"),
        chartDrawn("energy"),
        {
            content: "the heatmap has 7 x 24 cells, Wednesday 08:00 is busy",
            trigger: '.o_owm_heatmap .o_owm_heatmap_cell.o_owm_heatmap_busy[data-weekday="2"][data-hour="8"]',
            run() {
                const cells = document.querySelectorAll(".o_owm_heatmap .o_owm_heatmap_cell");
                if (cells.length !== 7 * 24) {
                    throw new Error(`${cells.length} heatmap cells`);
                }
            },
        },
        { trigger: '.o_owm_end_reasons tr[data-reason="power_drop"] td:contains(/^4$/)' },
        // Today.
        { trigger: '.o_owm_periods button[data-period="today"]', run: "click" },
        { trigger: '.o_owm_periods button.active[data-period="today"]' },
        kpi("sessions", "2"),
        kpi("working", "1.8 h"),
        // This week, then the laser's sessions of this week.
        { trigger: '.o_owm_periods button[data-period="week"]', run: "click" },
        { trigger: '.o_owm_periods button.active[data-period="week"]' },
        kpi("sessions", "3"),
        chartDrawn("machines"),
        clickMachineBar("Tour Laser"),
        {
            trigger: '.o_breadcrumb .o_last_breadcrumb_item:contains("Tour Laser")',
        },
        {
            content: "the laser's two sessions of this week, nothing else",
            trigger: '.o_list_view .o_data_row:contains("Tour Laser")',
            run() {
                const rows = [...document.querySelectorAll(".o_list_view .o_data_row")];
                const machines = rows.map((row) =>
                    row.querySelector('td[name="device_id"]').textContent.trim()
                );
                if (machines.length !== 2 || machines.some((m) => m !== "Tour Laser")) {
                    throw new Error(`unexpected sessions: ${machines.join(", ")}`);
                }
            },
        },
        // Back to the dashboard: still this week.
        { trigger: ".o_breadcrumb .o_back_button", run: "click" },
        { trigger: '.o_owm_periods button.active[data-period="week"]' },
        kpi("sessions", "3"),
    ],
});
