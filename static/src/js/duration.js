/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// Durations and start times, said one way everywhere: "45 s", "8 min",
// "1 h 51 min", never "1:51" (hours or minutes?). Used by the backend's
// fields (live_duration_field.js) and by the till (open_workshop_mqtt_pos):
// nothing here but the web client's core.

import { _t } from "@web/core/l10n/translation";
import { localization } from "@web/core/l10n/localization";

const { DateTime } = luxon;

function groupThousands(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, localization.thousandsSep || ",");
}

export function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds || 0));
    if (s < 60) {
        return _t("%s s", s);
    }
    const minutes = Math.round(s / 60);
    if (minutes < 60) {
        return _t("%s min", minutes);
    }
    const h = groupThousands(Math.floor(minutes / 60));
    const m = minutes % 60;
    return m ? _t("%(h)s h %(m)s min", { h, m }) : _t("%s h", h);
}

export function formatHours(hours) {
    return formatDuration((hours || 0) * 3600);
}

/** "14:02" today, "Sat 14:02" another day: when something started. */
export function formatStart(value, now = DateTime.now()) {
    if (value.hasSame(now, "day")) {
        return value.toLocaleString(DateTime.TIME_SIMPLE);
    }
    return value.toLocaleString({ weekday: "short", hour: "numeric", minute: "2-digit" });
}
