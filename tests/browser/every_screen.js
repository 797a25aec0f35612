/* Copyright 2026 Open Workshop MQTT developers
 * License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl). */

// Every screen of the addon in a real web client (run by test_every_screen.py
// through HttpCase.browser_js, not an asset: the page evaluates this text).
//
// Discovered at run time, never listed here: the menus under the app's root
// that the logged-in user sees, the views of each menu's action, and the
// filters and group-bys of its search panel (from the DOM). Each menu is
// opened, each view type switched to, each filter and group-by switched on and
// off again, and the first record of a list or kanban opened and left again.
//
// A problem does not stop the walk: error dialogs, RPC errors, console errors
// (Odoo's error service reports every uncaught error there) and screens that
// never settle are collected with the step they happened in (menu, view,
// filter), and the run ends with ONE console.error listing them all, which
// fails the test; otherwise with "test successful".

/* global odoo */
async function owmEveryScreen(options) {
    const started = Date.now();
    const BUDGET_MS = options.budgetMs || 100000; // the whole walk
    const IDLE_MS = options.idleMs || 10000; // one step settling
    const failures = [];
    let step = "start";

    const log = (...args) => console.log(`[every screen: ${options.label}]`, ...args);
    const short = (text, max = 600) => {
        text = String(text ?? "").replace(/\s+/g, " ").trim();
        return text.length > max ? `${text.slice(0, max)}...` : text;
    };
    const fail = (what) => {
        failures.push(`${step}: ${short(what, 900)}`);
        console.warn(`[every screen: ${options.label}] FAILURE at ${step}: ${what}`);
    };

    // console.error ends a browser_js test at once; collect it instead so the
    // walk goes on, and report everything at the end.
    const consoleError = console.error.bind(console);
    console.error = (...args) => fail(`console error: ${args.map((a) => (a instanceof Error ? a.message : a)).join(" ")}`);

    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    /** An error's message with the messages of its causes (Owl wraps the real one). */
    const describe = (error) => {
        const parts = [];
        for (let e = error; e && parts.length < 4; e = e.cause) {
            parts.push(e.data?.message || e.message || String(e));
        }
        return parts.join(" <- caused by: ");
    };
    const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

    try {
        const { rpcBus } = odoo.loader.modules.get("@web/core/network/rpc");
        const { App } = odoo.loader.modules.get("@odoo/owl");
        const { user } = odoo.loader.modules.get("@web/core/user");
        const env = odoo.__WOWL_DEBUG__.root.env;
        const { action: actionService, menu: menuService } = env.services;

        // -- waiting until the web client is idle ------------------------------
        const pending = new Map(); // rpc id -> what
        rpcBus.addEventListener("RPC:REQUEST", ({ detail }) => {
            const params = detail.data.params || {};
            pending.set(detail.data.id, params.model ? `${params.model}.${params.method}` : detail.url);
        });
        rpcBus.addEventListener("RPC:RESPONSE", ({ detail }) => {
            const what = pending.get(detail.data.id) || detail.data.params?.model || "";
            pending.delete(detail.data.id);
            const error = detail.error;
            if (error && error.name !== "ConnectionAbortedError") {
                const data = error.data || {};
                fail(`RPC error in ${what}: ${data.name || error.name}: ${data.message || error.message}`);
            }
        });
        const owlBusy = () => [...App.apps].some((app) => app.scheduler.tasks.size > 0);

        async function idle() {
            const deadline = Date.now() + IDLE_MS;
            let quiet = 0;
            while (quiet < 3) {
                await sleep(0);
                await frame();
                quiet = pending.size || owlBusy() ? 0 : quiet + 1;
                if (Date.now() > deadline) {
                    fail(`still busy after ${IDLE_MS} ms (pending: ${[...pending.values()].join(", ") || "rendering"})`);
                    return false;
                }
            }
            return true;
        }

        /** Run an async web client call, bounded; a rejection is a failure. */
        async function call(what, fn) {
            let timer;
            try {
                await Promise.race([
                    Promise.resolve().then(fn),
                    new Promise((_, reject) => {
                        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${IDLE_MS} ms`)), IDLE_MS);
                    }),
                ]);
            } catch (error) {
                fail(`${what} failed: ${describe(error)}`);
            } finally {
                clearTimeout(timer);
            }
            await idle();
        }

        async function click(el) {
            for (const type of ["pointerdown", "mousedown", "pointerup", "mouseup", "click"]) {
                const Event = type.startsWith("pointer") ? PointerEvent : MouseEvent;
                el.dispatchEvent(new Event(type, { bubbles: true, cancelable: true, view: window }));
            }
            await idle();
        }

        /** Error dialogs now open are failures of this step; close them. */
        async function checkDialogs() {
            for (let n = 0; n < 5; n++) {
                const dialog = document.querySelector(".o_error_dialog");
                if (!dialog) {
                    return;
                }
                const title = dialog.querySelector(".modal-title")?.textContent;
                // An "Oops" dialog hides its traceback behind a button: its head is the news.
                const details = dialog.querySelector(".modal-body button.btn-link");
                if (details && !dialog.querySelector(".o_error_detail")) {
                    await click(details);
                }
                const traceback = dialog.querySelector(".o_error_detail pre")?.textContent;
                const body = traceback
                    ? traceback.split("\n").slice(0, 3).join(" / ")
                    : dialog.querySelector(".modal-body")?.innerText;
                fail(`error dialog "${short(title, 80)}": ${short(body)}`);
                const close =
                    dialog.querySelector(".modal-footer .btn-primary") ||
                    dialog.querySelector(".btn-close") ||
                    dialog.querySelector(".modal-footer button");
                if (!close) {
                    return;
                }
                await click(close);
            }
        }

        async function settle() {
            await idle();
            await checkDialogs();
        }

        const overBudget = () => Date.now() - started > BUDGET_MS;
        const main = () => document.querySelector(".o_action_manager");
        const currentViewType = () => actionService.currentController?.view?.type;

        // -- the search panel --------------------------------------------------
        const SECTIONS = { filter: ".o_filter_menu", groupBy: ".o_group_by_menu" };

        function searchToggler() {
            return main()?.querySelector(".o_control_panel .o_searchview_dropdown_toggler");
        }

        async function openSearchMenu() {
            if (!document.querySelector(".o_search_bar_menu")) {
                const toggler = searchToggler();
                if (!toggler) {
                    return false;
                }
                await click(toggler);
            }
            return Boolean(document.querySelector(".o_search_bar_menu"));
        }

        async function closeSearchMenu() {
            if (document.querySelector(".o_search_bar_menu") && searchToggler()) {
                await click(searchToggler());
            }
        }

        /** The section's entries: plain items and accordions (items with options). */
        function entries(section) {
            const menu = document.querySelector(`.o_search_bar_menu ${SECTIONS[section]}`);
            if (!menu) {
                return [];
            }
            return [...menu.querySelectorAll(":scope > .o_menu_item:not(.o_add_custom_filter), :scope > .o_accordion")];
        }

        const label = (el) => short(el.querySelector(":scope > .o_accordion_toggle")?.textContent || el.textContent, 60);

        /** Switch the index-th entry's option (or the entry itself) on and off. */
        async function toggleTwice(section, index, optionIndex = null) {
            for (let n = 0; n < 2; n++) {
                if (!(await openSearchMenu())) {
                    fail("the search panel does not open any more");
                    return false;
                }
                let el = entries(section)[index];
                if (!el) {
                    fail(`the ${section} entry ${index} disappeared`);
                    return false;
                }
                if (optionIndex !== null) {
                    if (!el.querySelector(".o_accordion_values")) {
                        await click(el.querySelector(".o_accordion_toggle"));
                        el = entries(section)[index];
                    }
                    el = el?.querySelectorAll(".o_accordion_values > .dropdown-item")[optionIndex];
                    if (!el) {
                        fail(`the option ${optionIndex} disappeared`);
                        return false;
                    }
                }
                await click(el);
                await checkDialogs();
            }
            return true;
        }

        /**
         * Switch every entry of the sections on and off, and every option of an
         * entry with options (a date filter's periods, a date group-by's
         * intervals) -- or, with onlyLastOption, just its last (finest) one.
         */
        async function exerciseSearch(where, sections, onlyLastOption = false) {
            if (!(await openSearchMenu())) {
                return 0;
            }
            let count = 0;
            for (const section of sections) {
                const total = entries(section).length;
                for (let index = 0; index < total && !overBudget(); index++) {
                    await openSearchMenu();
                    const entry = entries(section)[index];
                    if (!entry) {
                        break;
                    }
                    const name = label(entry);
                    if (entry.classList.contains("o_accordion")) {
                        if (!entry.querySelector(".o_accordion_values")) {
                            await click(entry.querySelector(".o_accordion_toggle"));
                        }
                        const options = entries(section)[index]?.querySelectorAll(".o_accordion_values > .dropdown-item") || [];
                        const optionLabels = [...options].map((o) => short(o.textContent, 40));
                        const firstOption = onlyLastOption ? optionLabels.length - 1 : 0;
                        for (let o = Math.max(firstOption, 0); o < optionLabels.length && !overBudget(); o++) {
                            step = `${where}, ${section} "${name}" option "${optionLabels[o]}"`;
                            await toggleTwice(section, index, o);
                            count++;
                        }
                    } else {
                        step = `${where}, ${section} "${name}"`;
                        await toggleTwice(section, index);
                        count++;
                    }
                }
            }
            step = where;
            await closeSearchMenu();
            return count;
        }

        // -- records -----------------------------------------------------------
        async function openFirstRecord(where) {
            const root = main();
            if (!root || root.querySelector(".o_view_sample_data")) {
                return; // no records, only sample data
            }
            const viewType = currentViewType();
            let target = null;
            if (viewType === "list") {
                target = root.querySelector(".o_list_renderer .o_data_row td.o_data_cell");
            } else if (viewType === "kanban") {
                target = root.querySelector(".o_kanban_renderer .o_kanban_record:not(.o_kanban_ghost)");
            }
            if (!target) {
                return;
            }
            step = `${where}, first record's form`;
            await click(target);
            await checkDialogs();
            if (currentViewType() !== "form" || !main()?.querySelector(".o_form_view")) {
                fail(`clicking the first record did not open its form (now: ${currentViewType()})`);
                return;
            }
            forms++;
            screens++;
            const back = main().querySelector(".o_breadcrumb .o_back_button");
            step = `${where}, back from the form`;
            if (back) {
                await click(back);
            } else {
                await call("restore", () => actionService.restore());
            }
            await checkDialogs();
            if (currentViewType() !== viewType) {
                fail(`going back from the form did not return to the ${viewType} view (now: ${currentViewType()})`);
            }
        }

        // -- menus -------------------------------------------------------------
        const root = menuService.getAll().find((m) => m.xmlid === options.rootMenu);
        if (!root) {
            throw new Error(`the app's root menu ${options.rootMenu} is not visible to this user`);
        }
        // Children before their parent: an action shared by a parent and a
        // child (the app opens its first menu's) is explored, and its problems
        // named, under the child.
        const menus = [];
        (function walk(m, path) {
            const here = [...path, m.name];
            for (const child of menuService.getMenuAsTree(m.id).childrenTree || []) {
                walk(child, here);
            }
            if (m.actionID) {
                menus.push({ menu: m, path: `${here.join(" / ")} (${m.xmlid})` });
            }
        })(menuService.getMenuAsTree(root.id), []);
        log(`user ${user.login}, language ${user.context.lang}: ${menus.length} menus with an action`);
        if (options.lang && user.context.lang !== options.lang) {
            fail(`the user's language is ${user.context.lang}, expected ${options.lang}`);
        }
        if (!menus.length) {
            fail("no menu with an action under the app's root");
        }

        const explored = new Set();
        let screens = 0;
        let searches = 0;
        let forms = 0;
        for (const { menu, path } of menus) {
            if (overBudget()) {
                fail(`the walk took longer than ${BUDGET_MS} ms; menus left unopened`);
                break;
            }
            step = `menu ${path}`;
            let description = null;
            await call("loading the action", async () => {
                description = await actionService.loadAction(menu.actionID);
            });
            await call("opening the menu", () => menuService.selectMenu(menu));
            await checkDialogs();
            screens++;
            if (!description || explored.has(menu.actionID)) {
                continue;
            }
            explored.add(menu.actionID);
            if (description.type === "ir.actions.server") {
                // It runs on the server and returns the action shown: walk that.
                const shown = actionService.currentController?.action;
                if (!shown || shown.type !== "ir.actions.act_window") {
                    fail(`the server action showed no window (showing: ${shown?.name})`);
                    continue;
                }
                description = shown;
            } else if (description.target !== "new" && actionService.currentController?.action?.id !== description.id) {
                fail(`the menu's action did not open (showing: ${actionService.currentController?.action?.name})`);
                continue;
            }
            if (description.type !== "ir.actions.act_window") {
                log(`${path}: ${description.type} ${description.tag || ""} opened`);
                continue;
            }
            if (description.target === "new") {
                // A wizard: it opened in a dialog; close it again.
                if (!document.querySelector(".o_dialog .o_form_view")) {
                    fail("the wizard's dialog did not open");
                }
                const close = document.querySelector(".o_dialog .modal-header .btn-close");
                if (close) {
                    await click(close);
                }
                await checkDialogs();
                log(`${path}: wizard opened and closed`);
                continue;
            }
            const searchesBefore = searches;
            const formsBefore = forms;
            const viewTypes = (description.views || [])
                .map(([, type]) => type)
                .filter((type) => type !== "form" && type !== "search");
            const first = currentViewType();
            // The action's first view: every filter and group-by, then its record.
            const where = `menu ${path}, ${first} view`;
            step = where;
            if (first && first !== "form") {
                searches += await exerciseSearch(where, ["filter", "groupBy"]);
                await openFirstRecord(where);
                // Back to the action's defaults (date filter options leave a year on).
                step = `menu ${path} (reopened)`;
                await call("opening the menu again", () => menuService.selectMenu(menu));
                await checkDialogs();
            }
            // Every other view type: its group-bys (each view groups its own
            // way; of a date group-by's intervals the finest) and its record.
            for (const viewType of viewTypes) {
                if (viewType === first || overBudget()) {
                    continue;
                }
                const whereView = `menu ${path}, ${viewType} view`;
                step = whereView;
                await call(`switching to the ${viewType} view`, () => actionService.switchView(viewType));
                await checkDialogs();
                if (currentViewType() !== viewType) {
                    fail(`the ${viewType} view did not open (now: ${currentViewType()})`);
                    continue;
                }
                screens++;
                searches += await exerciseSearch(whereView, ["groupBy"], true);
                await openFirstRecord(whereView);
            }
            log(`${path}: views ${viewTypes.join(", ") || first} done (${searches - searchesBefore} filter/group-by switches, ${forms - formsBefore} records opened)`);
        }
        step = "end";
        log(`${screens} screens, ${searches} filter/group-by switches in ${Math.round((Date.now() - started) / 1000)} s`);
    } catch (error) {
        fail(`the walk broke off: ${error?.stack || error}`);
    } finally {
        console.error = consoleError;
    }
    if (failures.length) {
        console.error(
            `Every screen (${options.label}): ${failures.length} problem(s):\n - ${failures.join("\n - ")}`
        );
    } else {
        console.log("test successful");
    }
}
