/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A manager opens a machine's equipment: its live state, its meters (1 h 30 min
// of work, counted from the sessions), its plan that asked for service, the
// smart buttons to its sessions and its requests. The test
// (tests/test_tour_equipment.py) seeds two sessions and a due plan.

import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("owm_equipment_tour", {
    steps: () => [
        {
            content: "the equipment form is open",
            trigger: ".o_breadcrumb .active:contains(Tour Laser)",
        },
        {
            content: "open the Workshop Machine page",
            trigger: ".o_notebook .nav-link[name=mqtt_machine]",
            run: "click",
        },
        {
            content: "the machine",
            trigger: ".o_field_widget[name=mqtt_device_id] input",
            run() {
                if (this.anchor.value !== "Tour Laser") {
                    throw new Error(`the machine is "${this.anchor.value}"`);
                }
            },
        },
        {
            content: "its live state",
            trigger: ".o_field_widget[name=mqtt_current_state]:contains(Off)",
        },
        {
            content: "the lifetime working hours read as a duration",
            trigger: ".o_field_widget[name=mqtt_working_hours]:contains(/^1 h 30 min$/)",
        },
        {
            content: "and since the last preventive maintenance (none yet)",
            trigger: ".o_field_widget[name=mqtt_working_hours_since]:contains(/^1 h 30 min$/)",
        },
        {
            content: "the plan asked for service",
            trigger:
                ".o_field_widget[name=mqtt_plan_ids] .o_data_row:contains(Clean the lens) .badge:contains(Requested)",
        },
        {
            content: "the sessions' smart button counts them",
            trigger: "button[name=action_view_mqtt_sessions]:contains(2)",
            run: "click",
        },
        {
            content: "the machine's two sessions",
            trigger: ".o_list_view .o_data_row:nth-child(2)",
            run() {
                const rows = document.querySelectorAll(".o_list_view .o_data_row");
                if (rows.length !== 2) {
                    throw new Error(`${rows.length} sessions listed, not 2`);
                }
            },
        },
        {
            content: "back to the equipment",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li:first-child a",
            run: "click",
        },
        {
            content: "its requests",
            trigger: ".o_form_view button.oe_stat_button:contains(Maintenance)",
            run: "click",
        },
        {
            content: "the request the plan opened",
            trigger: ".o_data_row:contains(Clean the lens: Tour Laser), .o_kanban_record:contains(Clean the lens: Tour Laser)",
        },
    ],
});
