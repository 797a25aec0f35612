/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// Durations, said one way everywhere (board, lists, forms, analytics):
// "45 s", "8 min", "1 h 51 min", never "1:51" (hours or minutes?).
//
// Fields:
// - owm_duration (float: hours, or seconds with options="{'unit': 'seconds'}")
//   and its formatter, so list totals and pivot measures read the same;
// - owm_since (datetime): "Since 14:02 · 8 min", ticking;
// - owm_countdown (datetime): "ends in 12 s", ticking;
// - owm_live_duration (datetime, options="{'ago': true}"): "12 s ago".

import { Component, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";
import { formatDuration, formatHours, formatStart } from "./duration";

const { DateTime } = luxon;

function useTicking() {
    const state = useState({ now: Date.now() });
    const timer = setInterval(() => (state.now = Date.now()), 1000);
    onWillUnmount(() => clearInterval(timer));
    return state;
}

class DurationField extends Component {
    static template = "open_workshop_mqtt.DurationField";
    static props = { ...standardFieldProps, unit: { type: String, optional: true } };

    get text() {
        const value = this.props.record.data[this.props.name];
        return this.props.unit === "seconds" ? formatDuration(value) : formatHours(value);
    }
}

export class LiveDurationField extends Component {
    static template = "open_workshop_mqtt.DurationField";
    static props = {
        ...standardFieldProps,
        ago: { type: Boolean, optional: true },
        since: { type: Boolean, optional: true },
        countdown: { type: Boolean, optional: true },
    };

    setup() {
        this.state = useTicking();
    }

    get text() {
        const value = this.props.record.data[this.props.name];
        if (!value) {
            return "";
        }
        const seconds = (this.state.now - value.toMillis()) / 1000;
        if (this.props.countdown) {
            return _t("ends in %s", formatDuration(-seconds));
        }
        if (this.props.since) {
            return _t("Since %(time)s · %(duration)s", {
                time: formatStart(value),
                duration: formatDuration(seconds),
            });
        }
        if (this.props.ago) {
            return _t("%s ago", formatDuration(seconds));
        }
        return formatDuration(seconds);
    }
}

registry.category("fields").add("owm_duration", {
    component: DurationField,
    supportedTypes: ["float"],
    extractProps: ({ options }) => ({ unit: options.unit }),
});
registry.category("formatters").add("owm_duration", (value) => formatHours(value));
registry.category("fields").add("owm_live_duration", {
    component: LiveDurationField,
    supportedTypes: ["datetime"],
    extractProps: ({ options }) => ({ ago: Boolean(options.ago) }),
});
registry.category("fields").add("owm_since", {
    component: LiveDurationField,
    supportedTypes: ["datetime"],
    extractProps: () => ({ since: true }),
});
registry.category("fields").add("owm_countdown", {
    component: LiveDurationField,
    supportedTypes: ["datetime"],
    extractProps: () => ({ countdown: true }),
});
