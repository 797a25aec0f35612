/** @odoo-module **/
/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

/* global posmodel */

// A cashier opens the shop, opens the Machines screen, sees a machine change
// live (a push of the server, played here: the tests have no websocket),
// selects the member, adds the member's closed session and takes the payment.
// The test (tests/test_tour_pos.py) checks the session is charged once and
// its member set.

import * as Chrome from "@point_of_sale/../tests/tours/utils/chrome_util";
import * as Dialog from "@point_of_sale/../tests/tours/utils/dialog_util";
import * as PaymentScreen from "@point_of_sale/../tests/tours/utils/payment_screen_util";
import * as ProductScreen from "@point_of_sale/../tests/tours/utils/product_screen_util";
import * as ReceiptScreen from "@point_of_sale/../tests/tours/utils/receipt_screen_util";
import { registry } from "@web/core/registry";

function openMachines() {
    return {
        content: "open the Machines screen",
        trigger: ".control-buttons .o_owm_machines_button",
        run: "click",
    };
}

registry.category("web_tour.tours").add("owm_pos_machines_tour", {
    steps: () =>
        [
            Chrome.startPoS(),
            Dialog.confirm("Open Register"),
            openMachines(),
            {
                content: "the machine, off",
                trigger: ".o_owm_machine:contains(Tour Laser) .o_owm_machine_state:contains(Off)",
            },
            {
                content: "its closed session, at its price",
                trigger: ".o_owm_machine:contains(Tour Laser) .o_owm_session_price:contains(6.00)",
            },
            {
                content: "the server pushes the machine working at 250 W",
                trigger: ".o_owm_machine:contains(Tour Laser)",
                run() {
                    const machine = posmodel.models["mqtt.device"].find((m) => m.name === "Tour Laser");
                    posmodel.owmOnMachines([
                        {
                            id: machine.id,
                            current_state: "working",
                            current_power_w: 250.4,
                            online: true,
                        },
                    ]);
                },
            },
            {
                content: "the screen follows without a reload",
                trigger: ".o_owm_machine:contains(Tour Laser) .o_owm_machine_power:contains(250 W)",
            },
            {
                content: "working",
                trigger: ".o_owm_machine:contains(Tour Laser) .o_owm_machine_state:contains(Working)",
            },
            {
                content: "back to the order",
                trigger: ".o_owm_machines_screen .back-button",
                run: "click",
            },
            ProductScreen.clickPartnerButton(),
            ProductScreen.clickCustomer("Aaa Member"),
            openMachines(),
            {
                content: "the member's name heads their sessions",
                trigger: ".o_owm_partner_sessions:contains(Aaa Member)",
            },
            {
                content: "add the session",
                trigger: ".o_owm_machine:contains(Tour Laser) .o_owm_add_session",
                run: "click",
            },
            ProductScreen.orderLineHas("Laser time", "1.0", "6.00"),
            {
                content: "the line says which session",
                trigger: ".orderline:contains(Laser time) .customer-note:contains(Tour Laser)",
            },
            ProductScreen.clickPayButton(),
            PaymentScreen.clickPaymentMethod("Bank"),
            PaymentScreen.clickValidate(),
            ReceiptScreen.isShown(),
            ReceiptScreen.clickNextOrder(),
            openMachines(),
            {
                content: "the charged session is gone from the machine",
                trigger: ".o_owm_machine:contains(Tour Laser):not(:has(.o_owm_session_row))",
            },
        ].flat(),
});
