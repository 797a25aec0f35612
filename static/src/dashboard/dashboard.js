/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// The machine usage dashboard (Workshop > Analytics > Dashboard): KPI cards,
// working vs standby hours by machine, a weekday x hour heatmap, daily hours,
// energy by machine and end reasons, for today / this week / month / year.
// The numbers come from mqtt.dashboard.get_data (see models/mqtt_dashboard.py
// for which sessions a period holds); a click on a machine opens its sessions.

import { Component, onWillStart, useEffect, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { cookie } from "@web/core/browser/cookie";
import { getColor } from "@web/core/colors/colors";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { KeepLast } from "@web/core/utils/concurrency";
import { useService } from "@web/core/utils/hooks";
import { formatFloat } from "@web/core/utils/numbers";
import { useSetupAction } from "@web/search/action_hook";
import { Layout } from "@web/search/layout";

const { DateTime, Info } = luxon;

// The live board's colours (static/src/scss/live_board.scss).
export const WORKING_COLOR = "#2e7d32";
export const STANDBY_COLOR = "#f9a825";
const SESSION_ACTION = "open_workshop_mqtt.mqtt_session_action";

export function formatHours(hours) {
    return _t("%s h", formatFloat(hours, { digits: [false, 1] }));
}

/** Two decimals for small amounts, fewer as they grow (a card is narrow). */
export function formatEnergy(kwh) {
    const decimals = kwh >= 100 ? 0 : kwh >= 10 ? 1 : 2;
    return _t("%s kWh", formatFloat(kwh, { digits: [false, decimals] }));
}

/** One Chart.js chart; a new config (new data) draws a new chart. */
export class DashboardChart extends Component {
    static template = "open_workshop_mqtt.DashboardChart";
    static props = {
        name: String,
        config: Object,
        height: { type: Number, optional: true },
    };
    static defaultProps = { height: 280 };

    setup() {
        this.canvasRef = useRef("canvas");
        useEffect(
            (config) => {
                const chart = new Chart(this.canvasRef.el, config);
                return () => chart.destroy();
            },
            () => [this.props.config]
        );
    }
}

export class WorkshopDashboard extends Component {
    static template = "open_workshop_mqtt.Dashboard";
    static components = { Layout, DashboardChart };
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.actionService = useService("action");
        this.keepLast = new KeepLast();
        this.periods = [
            { key: "today", label: _t("Today") },
            { key: "week", label: _t("This week") },
            { key: "month", label: _t("This month") },
            { key: "year", label: _t("This year") },
        ];
        this.state = useState({ period: this.props.state?.period || "month", data: null });
        // Back from a machine's sessions (breadcrumb): the same period again.
        useSetupAction({ getLocalState: () => ({ period: this.state.period }) });
        onWillStart(() =>
            Promise.all([loadBundle("web.chartjs_lib"), this.load(this.state.period)])
        );
    }

    get display() {
        return { controlPanel: {} };
    }

    get periodLabel() {
        return this.periods.find((p) => p.key === this.state.period)?.label || "";
    }

    get rangeLabel() {
        const { date_from, date_to } = this.state.data;
        const from = DateTime.fromISO(date_from);
        const to = DateTime.fromISO(date_to);
        return date_from === date_to
            ? from.toLocaleString(DateTime.DATE_MED)
            : `${from.toLocaleString(DateTime.DATE_MED)} – ${to.toLocaleString(DateTime.DATE_MED)}`;
    }

    get isEmpty() {
        return !this.state.data.kpis.sessions;
    }

    async load(period) {
        const data = await this.keepLast.add(
            this.orm.call("mqtt.dashboard", "get_data", [], { period })
        );
        // Plain objects, not reactive: Chart.js keeps and changes its config.
        this.charts = this.buildCharts(data);
        this.heatmap = this.buildHeatmap(data);
        Object.assign(this.state, { period, data });
    }

    onPeriodClick(period) {
        if (period !== this.state.period) {
            return this.load(period);
        }
    }

    // -- KPI cards ------------------------------------------------------------
    get kpiCards() {
        const k = this.state.data.kpis;
        const pct = formatFloat(k.working_share, { digits: [false, 1] });
        return [
            { key: "sessions", label: _t("Sessions"), value: String(k.sessions) },
            { key: "running", label: _t("Running now"), value: String(k.running) },
            { key: "working", label: _t("Working hours"), value: formatHours(k.working_h) },
            { key: "standby", label: _t("Standby hours"), value: formatHours(k.standby_h) },
            { key: "share", label: _t("Working share"), value: _t("%s %", pct) },
            { key: "energy", label: _t("Energy"), value: formatEnergy(k.energy_kwh) },
            {
                key: "busiest",
                label: _t("Busiest machine"),
                value: k.busiest_machine ? k.busiest_machine.name : "–",
                detail: k.busiest_machine ? formatHours(k.busiest_working_h) : "",
            },
        ];
    }

    // -- charts ---------------------------------------------------------------
    buildCharts(data) {
        const machines = data.machines;
        const onMachineClick = (ev, elements) => {
            if (elements.length) {
                this.openMachine(machines[elements[0].index]);
            }
        };
        const onHover = (ev, elements) => {
            ev.native.target.style.cursor = elements.length ? "pointer" : "default";
        };
        const hoursTooltip = {
            callbacks: { label: (ctx) => `${ctx.dataset.label}: ${formatHours(ctx.raw)}` },
        };
        const colorScheme = cookie.get("color_scheme");
        const daily = data.daily;
        return {
            machines: {
                type: "bar",
                data: {
                    labels: machines.map((m) => m.name),
                    datasets: [
                        {
                            label: _t("Working"),
                            data: machines.map((m) => m.working_h),
                            backgroundColor: WORKING_COLOR,
                        },
                        {
                            label: _t("Standby"),
                            data: machines.map((m) => m.standby_h),
                            backgroundColor: STANDBY_COLOR,
                        },
                    ],
                },
                options: {
                    indexAxis: "y",
                    maintainAspectRatio: false,
                    scales: {
                        x: { stacked: true, title: { display: true, text: _t("Hours") } },
                        y: { stacked: true },
                    },
                    plugins: { tooltip: hoursTooltip },
                    onClick: onMachineClick,
                    onHover,
                },
            },
            machinesHeight: Math.max(160, 44 * machines.length + 70),
            daily: {
                type: "bar",
                data: {
                    labels: daily.map((d) =>
                        DateTime.fromISO(d.date).toLocaleString({ day: "numeric", month: "short" })
                    ),
                    datasets: [
                        {
                            label: _t("Working"),
                            data: daily.map((d) => d.working_h),
                            backgroundColor: WORKING_COLOR,
                        },
                        {
                            label: _t("Standby"),
                            data: daily.map((d) => d.standby_h),
                            backgroundColor: STANDBY_COLOR,
                        },
                    ],
                },
                options: {
                    maintainAspectRatio: false,
                    scales: {
                        x: { stacked: true },
                        y: { stacked: true, title: { display: true, text: _t("Hours") } },
                    },
                    plugins: { tooltip: hoursTooltip },
                },
            },
            energy: {
                type: "doughnut",
                data: {
                    labels: machines.map((m) => m.name),
                    datasets: [
                        {
                            label: _t("Energy"),
                            data: machines.map((m) => m.energy_kwh),
                            backgroundColor: machines.map((m, i) =>
                                getColor(i, colorScheme, machines.length)
                            ),
                        },
                    ],
                },
                options: {
                    maintainAspectRatio: false,
                    plugins: {
                        // Many machines: the names are in the tooltips.
                        legend: { display: machines.length <= 8, position: "right" },
                        tooltip: {
                            callbacks: {
                                label: (ctx) => `${ctx.label}: ${formatEnergy(ctx.raw)}`,
                            },
                        },
                    },
                    onClick: onMachineClick,
                    onHover,
                },
            },
        };
    }

    buildHeatmap(data) {
        const max = Math.max(0, ...data.heatmap.flat());
        const weekdays = Info.weekdays("short"); // Monday first, user's language
        return {
            hours: [...Array(24).keys()],
            rows: data.heatmap.map((hours, weekday) => ({
                weekday,
                label: weekdays[weekday],
                cells: hours.map((value, hour) => ({
                    hour,
                    value,
                    style: value
                        ? `background-color: rgba(46, 125, 50, ${(0.15 + (0.85 * value) / max).toFixed(3)})`
                        : "",
                    title: `${weekdays[weekday]} ${String(hour).padStart(2, "0")}:00 · ${formatHours(value)}`,
                })),
            })),
        };
    }

    // -- drill down -----------------------------------------------------------
    async openMachine(machine) {
        const data = this.state.data;
        const action = await this.actionService.loadAction(SESSION_ACTION);
        // This machine in this period only: not the action's default filters.
        const context = Object.fromEntries(
            Object.entries(action.context || {}).filter(([key]) => !key.startsWith("search_default_"))
        );
        return this.actionService.doAction({
            type: action.type,
            res_model: action.res_model,
            views: action.views.filter(([, type]) => type !== "search"),
            search_view_id: action.search_view_id,
            help: action.help,
            name: `${machine.name} · ${this.periodLabel}`,
            context,
            domain: [
                ["device_id", "=", machine.id],
                ["start_time", ">=", data.start_utc],
                ["start_time", "<", data.stop_utc],
            ],
        });
    }
}

registry.category("actions").add("owm_dashboard", WorkshopDashboard);
