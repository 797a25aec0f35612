/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// A manager starts the broker connection, watches a machine change state on
// the live board without reloading the page, and opens its running session.
// The test (tests/test_tour_live_board.py) plays the meter and the runner.

import { registry } from "@web/core/registry";

const MACHINE = "Tour Laser";
const NEIGHBOUR = "Tour Saw";

registry.category("web_tour.tours").add("owm_live_board_tour", {
    url: "/odoo/action-open_workshop_mqtt.mqtt_connection_action",
    steps: () => [
        {
            trigger: '.o_data_row td[name="name"]:contains("Tour broker")',
            run: "click",
        },
        {
            trigger: 'button[name="action_start"]',
            run: "click",
        },
        {
            // Start only records the wish; the form says what the runner does.
            trigger: 'button[name="action_stop"]',
        },
        {
            trigger: 'a[data-menu-xmlid="open_workshop_mqtt.mqtt_device_menu_board"]',
            run: "click",
        },
        {
            // The board as loaded: the machine is not working yet. Mark the page,
            // a reload would lose the mark.
            trigger: `.o_owm_card:contains("${MACHINE}") .o_owm_state:not(.o_owm_state_working)`,
            timeout: 30000,
            run() {
                document.body.classList.add("o_owm_tour_no_reload");
            },
        },
        {
            // Cards of one row line up (Odoo's own 1 px top margin for the first
            // record of a list would lift the first card 3 px above the rest).
            trigger: `.o_owm_card:contains("${NEIGHBOUR}")`,
            run() {
                const [first, second] = [
                    ...document.querySelectorAll(".o_kanban_record.o_owm_card"),
                ].map((el) => el.getBoundingClientRect());
                if (!second || second.left <= first.left) {
                    throw new Error("expected two cards side by side on the board");
                }
                if (first.top !== second.top || first.height !== second.height) {
                    throw new Error(
                        `first card ${first.top}px/${first.height}px high, ` +
                            `the next ${second.top}px/${second.height}px`
                    );
                }
            },
        },
        {
            // The meter reports load: the card turns to "working" by itself.
            trigger: `body.o_owm_tour_no_reload .o_owm_card:contains("${MACHINE}") .o_owm_state_working`,
            timeout: 60000,
        },
        {
            trigger: `body.o_owm_tour_no_reload .o_owm_card:contains("${MACHINE}") .o_owm_power:not(:contains("0.0"))`,
        },
        {
            // When it started and for how long, in words: never "1:51".
            content: "the running session says its start and a duration with a unit",
            trigger: `.o_owm_card:contains("${MACHINE}") .o_owm_duration:contains(Since)`,
            run() {
                const text = this.anchor.textContent;
                if (!/^Since .*\d{1,2}:\d\d.* · \d+ (s|min|h)/.test(text)) {
                    throw new Error(`unclear running time: "${text}"`);
                }
            },
        },
        {
            content: "the card's totals are words, not bare icons",
            trigger: `.o_owm_card:contains("${MACHINE}") .o_owm_totals:contains(sessions):contains(at work):contains(kWh used)`,
        },
        {
            trigger: `.o_owm_card:contains("${MACHINE}")`,
            run: "click",
        },
        {
            trigger: 'button[name="action_view_sessions"]',
            timeout: 20000,
            run: "click",
        },
        {
            trigger: `.o_data_row:contains("${MACHINE}") td.o_data_cell[name="start_time"]`,
            run: "click",
        },
        {
            trigger: '.o_form_view .o_statusbar_status .o_arrow_button_current:contains("Running")',
        },
        {
            trigger: `.o_form_view .oe_title:contains("${MACHINE}")`,
        },
    ],
});
