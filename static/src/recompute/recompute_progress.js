/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// The recompute wizard's Preview button with a progress bar: a long history
// (a month of a machine at one reading a second) is replayed step by step
// (mqtt.session.recompute.action_preview_step), and the bar follows.

import { Component, useState } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";

export class RecomputeProgress extends Component {
    static template = "open_workshop_mqtt.RecomputeProgress";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.notification = useService("notification");
        this.state = useState({ running: false, progress: 0 });
    }

    async preview() {
        const record = this.props.record;
        if (!(await record.save())) {
            return;
        }
        this.state.running = true;
        this.state.progress = 0;
        try {
            await this.orm.write(record.resModel, [record.resId], { step_state: false });
            let step = { done: false };
            while (!step.done) {
                step = await this.orm.call(record.resModel, "action_preview_step", [
                    [record.resId],
                ]);
                this.state.progress = step.progress;
            }
            await record.load();
        } catch (error) {
            this.notification.add(error.data?.message || error.message, { type: "danger" });
        } finally {
            this.state.running = false;
        }
    }
}

registry.category("view_widgets").add("owm_recompute_progress", {
    component: RecomputeProgress,
});
