/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// The workshop's live board: a kanban of machines that reloads itself when the
// runner announces new readings on the bus (after its commit), so staff never
// press reload. Notifications carry device ids only; the reload goes through
// the ORM, so access rules and companies apply as usual.

import { onWillUnmount } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { KanbanController } from "@web/views/kanban/kanban_controller";
import { kanbanView } from "@web/views/kanban/kanban_view";

export const DEVICE_NOTIFICATION = "open_workshop_mqtt/devices";
const MIN_RELOAD_INTERVAL_MS = 500;

export class LiveBoardController extends KanbanController {
    setup() {
        super.setup();
        this.busService = useService("bus_service");
        this._reloadTimer = null;
        this._lastReload = 0;
        this._onDevices = (payload) => this.onDevicesChanged(payload);
        this.busService.subscribe(DEVICE_NOTIFICATION, this._onDevices);
        this.busService.start();
        onWillUnmount(() => {
            this.busService.unsubscribe(DEVICE_NOTIFICATION, this._onDevices);
            clearTimeout(this._reloadTimer);
        });
    }

    /** Coalesce bursts of notifications into at most one reload per interval. */
    onDevicesChanged() {
        if (this._reloadTimer) {
            return;
        }
        const wait = Math.max(0, this._lastReload + MIN_RELOAD_INTERVAL_MS - Date.now());
        this._reloadTimer = setTimeout(async () => {
            this._reloadTimer = null;
            this._lastReload = Date.now();
            await this.model.load();
        }, wait);
    }
}

registry.category("views").add("owm_live_board", {
    ...kanbanView,
    Controller: LiveBoardController,
});
