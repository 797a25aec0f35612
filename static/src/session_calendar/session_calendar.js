/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// The sessions' calendar opens where its sessions are: the standard one
// scrolls to the current hour, which shows an empty morning when the
// machines ran at night.  It scrolls to an hour before the earliest session
// shown (and again whenever the week or day shown changes).

import { onMounted } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { CalendarCommonRenderer } from "@web/views/calendar/calendar_common/calendar_common_renderer";
import { CalendarRenderer } from "@web/views/calendar/calendar_renderer";
import { calendarView } from "@web/views/calendar/calendar_view";

/** The hour to scroll to: one before the earliest start among ``records``. */
export function firstHour(records) {
    const hours = Object.values(records)
        .map((record) => record.start)
        .filter(Boolean)
        .map((start) => start.hour);
    return hours.length ? Math.max(0, Math.min(...hours) - 1) : null;
}

export class SessionCommonRenderer extends CalendarCommonRenderer {
    setup() {
        super.setup();
        onMounted(() => {
            const hour = firstHour(this.props.model.records);
            if (hour !== null && this.props.model.scale !== "month") {
                this.fc.api.scrollToTime(`${String(hour).padStart(2, "0")}:00:00`);
            }
        });
    }
}

export class SessionCalendarRenderer extends CalendarRenderer {
    static components = {
        ...CalendarRenderer.components,
        day: SessionCommonRenderer,
        week: SessionCommonRenderer,
    };
}

registry.category("views").add("owm_session_calendar", {
    ...calendarView,
    Renderer: SessionCalendarRenderer,
});
