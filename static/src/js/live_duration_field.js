/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A datetime shown as time elapsed since it, ticking every second: "1:02:03"
// for a running session, "12 s ago" with the `ago` option for the last message.

import { Component, onWillUnmount, useState } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

export function formatElapsed(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

export class LiveDurationField extends Component {
    static template = "open_workshop_mqtt.LiveDurationField";
    static props = { ...standardFieldProps, ago: { type: Boolean, optional: true } };

    setup() {
        this.state = useState({ now: Date.now() });
        const timer = setInterval(() => (this.state.now = Date.now()), 1000);
        onWillUnmount(() => clearInterval(timer));
    }

    get text() {
        const value = this.props.record.data[this.props.name];
        if (!value) {
            return "";
        }
        const seconds = (this.state.now - value.toMillis()) / 1000;
        if (!this.props.ago) {
            return formatElapsed(seconds);
        }
        if (seconds < 60) {
            return _t("%s s ago", Math.max(0, Math.floor(seconds)));
        }
        if (seconds < 3600) {
            return _t("%s min ago", Math.floor(seconds / 60));
        }
        if (seconds < 86400) {
            return _t("%s h ago", Math.floor(seconds / 3600));
        }
        return _t("%s days ago", Math.floor(seconds / 86400));
    }
}

registry.category("fields").add("owm_live_duration", {
    component: LiveDurationField,
    supportedTypes: ["datetime"],
    extractProps: ({ options }) => ({ ago: Boolean(options.ago) }),
});
