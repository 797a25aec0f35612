/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A session's line is one session: never merged, its quantity stays 1;
// deleting it releases the session.

import { _t } from "@web/core/l10n/translation";
import { patch } from "@web/core/utils/patch";
import { PosOrderline } from "@point_of_sale/app/models/pos_order_line";
import { PosOrder } from "@point_of_sale/app/models/pos_order";

// The till that releases sessions (the records cannot reach the store).
let release = () => {};
export function onRelease(callback) {
    release = callback;
}

patch(PosOrderline.prototype, {
    can_be_merged_with(orderline) {
        if (this.mqtt_session_id || orderline.mqtt_session_id) {
            return false;
        }
        return super.can_be_merged_with(...arguments);
    },
    set_quantity(quantity, keep_price) {
        const removing = quantity === "" || quantity === "remove";
        if (this.mqtt_session_id && !this.refunded_orderline_id && !removing) {
            if (parseFloat(quantity) !== 1) {
                return {
                    title: _t("A machine session"),
                    body: _t("A machine session is charged once: its quantity stays 1."),
                };
            }
        }
        return super.set_quantity(quantity, keep_price);
    },
});

patch(PosOrder.prototype, {
    removeOrderline(line) {
        const session = line.mqtt_session_id;
        const uuid = this.uuid;
        const removed = super.removeOrderline(...arguments);
        if (removed && session && !line.refunded_orderline_id) {
            release([session], uuid);
        }
        return removed;
    },
});
