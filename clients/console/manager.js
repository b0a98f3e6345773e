// The manager's board: every order by stage (from the status view), filterable by
// trainer and paged; assign a trainer from the roster (with each trainer's load);
// register a trainer. The board polls, so changes show within a second.

import { get, listAll, post } from "./api.js";
import { field, formPanel, formatTime, h, replaceChildren, setText, syncRows } from "./dom.js";
import { describe, showError, showSuccess } from "./errors.js";
import { Pager } from "./pager.js";
import { Poller } from "./poll.js";
import { STAGES, isOpen, stageBadge, stageOf } from "./stages.js";

const PAGE_SIZE = 20;
const ROSTER_INTERVAL_MS = 5_000;

/** A select's options as [value, text] pairs, rebuilt only when they change (the choice kept). */
function setOptions(select, options) {
  const signature = JSON.stringify(options);
  if (select.dataset.options === signature) return;
  const chosen = select.value;
  select.dataset.options = signature;
  replaceChildren(select, ...options.map(([value, text]) => h("option", { value, selected: value === chosen }, text)));
}

export function managerView(main) {
  const state = { stage: "all", trainerId: "", roster: [], loads: new Map() };
  const pollers = [];

  // -- the board ---------------------------------------------------------------------
  const stageButtons = STAGES.map((stage) =>
    h(
      "button",
      {
        type: "button",
        class: "tab",
        "aria-pressed": stage.id === state.stage ? "true" : "false",
        "data-stage": stage.id,
        onclick: () => chooseStage(stage.id),
      },
      stage.label,
    ),
  );
  const trainerFilter = h("select", { name: "trainer_filter" }, h("option", { value: "" }, "All trainers"));
  trainerFilter.addEventListener("change", () => {
    state.trainerId = trainerFilter.value;
    pager.reset();
    board.now();
  });
  const caption = h("caption", {});
  const rows = h("tbody", {});
  const boardMessage = h("p", { class: "form-status", role: "status" });
  const pager = new Pager(() => board.now(), "Board pages");

  const boardSection = h(
    "section",
    { "aria-labelledby": "board-title", class: "card" },
    h("h1", { id: "board-title" }, "Manager's board"),
    h(
      "div",
      { class: "toolbar" },
      h("div", { class: "tabs", role: "group", "aria-label": "Stage" }, ...stageButtons),
      field({ id: "board-trainer", label: "Trainer", control: trainerFilter }),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "cards", id: "board" },
        caption,
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["Class", "Customer", "Stage", "Trainer", "Starts", "Updated"].map((title) => h("th", { scope: "col" }, title)),
            h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")),
          ),
        ),
        rows,
      ),
    ),
    boardMessage,
    pager.element,
  );

  function chooseStage(stage) {
    state.stage = stage;
    for (const button of stageButtons) button.setAttribute("aria-pressed", button.dataset.stage === stage ? "true" : "false");
    pager.reset();
    board.now();
  }

  function renderOrder(status) {
    const stage = stageOf(status);
    const action =
      stage === "awaiting"
        ? h(
            "button",
            {
              type: "button",
              class: "small",
              "aria-label": `Assign a trainer to ${status.class_name} for ${status.customer_name || status.customer_id}`,
              onclick: () => openAssign(status),
            },
            "Assign",
          )
        : null;
    return h(
      "tr",
      { "data-order-id": status.order_id, "data-stage": stage },
      h("th", { scope: "row", "data-label": "Class" }, status.class_name),
      h("td", { "data-label": "Customer" }, status.customer_name || status.customer_id, h("span", { class: "muted" }, ` (${status.customer_id})`)),
      h("td", { "data-label": "Stage" }, stageBadge(status)),
      h("td", { "data-label": "Trainer" }, status.trainer_name || status.trainer_id || "—"),
      h("td", { "data-label": "Starts" }, formatTime(status.start_time)),
      h("td", { "data-label": "Updated" }, formatTime(status.update_time)),
      h("td", { "data-label": "Actions", class: "actions" }, action),
    );
  }

  const boardQuery = () => JSON.stringify([state.stage, state.trainerId, pager.token]);

  async function refreshBoard() {
    const stage = STAGES.find((s) => s.id === state.stage);
    const asked = boardQuery();
    const page = await get("/v1/status/orders", {
      ...stage.query,
      trainer_id: state.trainerId,
      page_size: PAGE_SIZE,
      page_token: pager.token,
    });
    if (boardQuery() !== asked) return; // the filter or page changed meanwhile: asked again
    const statuses = page.statuses || [];
    const trainer = state.roster.find((t) => t.trainer_id === state.trainerId);
    setText(caption, `Orders: ${stage.label.toLowerCase()}${trainer ? `, trainer ${trainer.name}` : ""} (${statuses.length} on this page)`);
    if (statuses.length) {
      syncRows(rows, statuses, (s) => s.order_id, renderOrder);
    } else {
      syncRows(rows, [{ empty: true }], () => "empty", () => h("tr", { class: "empty" }, h("td", { colspan: 7 }, "No orders here.")));
    }
    pager.update(page.next_page_token);
    setText(boardMessage, "");
  }

  const board = new Poller(refreshBoard, { onError: (error) => setText(boardMessage, describe(error)) });
  pollers.push(board);

  // -- assigning a trainer -----------------------------------------------------------
  const trainerChoice = h("select", { name: "trainer_id", required: true });
  const {
    panel: assignPanel,
    form: assignForm,
    summary: assignSummary,
    submit: assignButton,
  } = formPanel({
    id: "assign-panel",
    title: "Assign a trainer",
    fields: [
      field({ id: "assign-trainer", name: "trainer_id", label: "Trainer (open classes in brackets)", control: trainerChoice }),
    ],
    submitLabel: "Assign trainer",
    onClose: () => closeAssign(),
  });
  let assigning = null;

  async function openAssign(status) {
    assigning = status;
    assignPanel.hidden = false;
    replaceChildren(assignSummary, h("strong", {}, status.class_name), ` for ${status.customer_name || status.customer_id}`, status.start_time ? `, ${formatTime(status.start_time)}` : "");
    showSuccess(assignForm, "");
    state.loads = new Map();
    fillTrainerChoice();
    trainerChoice.focus();
    await refreshRoster().catch((error) => showError(assignForm, error));
  }

  function fillTrainerChoice() {
    const active = state.roster.filter((t) => t.active);
    const options = active.map((trainer) => {
      const load = state.loads.get(trainer.trainer_id);
      return [trainer.trainer_id, load === undefined ? trainer.name : `${trainer.name} (${load} open ${load === 1 ? "class" : "classes"})`];
    });
    setOptions(trainerChoice, options.length ? options : [["", "No trainer on the roster yet"]]);
  }

  function closeAssign() {
    assignPanel.hidden = true;
    assigning = null;
  }

  assignForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!assigning || assignButton.disabled) return;
    assignButton.disabled = true;
    try {
      const assignment = await post(`/v1/assignments/${encodeURIComponent(assigning.order_id)}:assign`, { trainer_id: trainerChoice.value });
      showSuccess(assignForm, `${assignment.trainer_name || "The trainer"} is assigned to ${assignment.class_name}.`);
      board.now();
      refreshRoster().catch((error) => showError(assignForm, error));
    } catch (error) {
      showError(assignForm, error);
    } finally {
      assignButton.disabled = false;
    }
  });

  // -- the roster ----------------------------------------------------------------------
  const rosterRows = h("tbody", {});
  const trainerName = h("input", { type: "text", required: true, maxlength: 200, autocomplete: "off" });
  const registerButton = h("button", { type: "submit" }, "Register trainer");
  const registered = h("p", { class: "registered", id: "registered-trainer", "aria-live": "polite" });
  const registerForm = h(
    "form",
    { novalidate: true, class: "inline-form" },
    field({ id: "register-name", name: "name", label: "New trainer's name", control: trainerName }),
    registerButton,
    h("p", { class: "form-status", role: "alert" }),
  );
  let registerRequestId = "";
  trainerName.addEventListener("input", () => {
    registerRequestId = "";
  });

  registerForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (registerButton.disabled) return;
    registerRequestId ||= crypto.randomUUID();
    registerButton.disabled = true;
    try {
      const trainer = await post("/v1/trainers", { name: trainerName.value.trim(), request_id: registerRequestId });
      registerRequestId = "";
      trainerName.value = "";
      showSuccess(registerForm, `${trainer.name} is on the roster.`);
      replaceChildren(registered, `${trainer.name}'s trainer id (they sign in with it): `, h("code", { "data-trainer-id": trainer.trainer_id }, trainer.trainer_id));
      await refreshRoster();
    } catch (error) {
      showError(registerForm, error);
    } finally {
      registerButton.disabled = false;
    }
  });

  const rosterSection = h(
    "section",
    { class: "card", "aria-labelledby": "roster-title" },
    h("h2", { id: "roster-title" }, "Trainers"),
    registerForm,
    registered,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "cards", id: "roster" },
        h("caption", {}, "The roster, with each trainer's open classes"),
        h("thead", {}, h("tr", {}, ...["Name", "Trainer id", "Open classes", "Active"].map((title) => h("th", { scope: "col" }, title)))),
        rosterRows,
      ),
    ),
  );

  async function refreshRoster() {
    const roster = await listAll("/v1/trainers", {}, "trainers");
    const loads = await Promise.all(
      roster.map(async (trainer) => {
        const statuses = await listAll("/v1/status/orders", { trainer_id: trainer.trainer_id }, "statuses");
        return [trainer.trainer_id, statuses.filter(isOpen).length];
      }),
    );
    state.roster = roster;
    state.loads = new Map(loads);
    syncRows(
      rosterRows,
      roster.map((trainer) => ({ ...trainer, load: state.loads.get(trainer.trainer_id) })),
      (t) => t.trainer_id,
      (trainer) =>
        h(
          "tr",
          { "data-trainer-id": trainer.trainer_id },
          h("th", { scope: "row", "data-label": "Name" }, trainer.name),
          h("td", { "data-label": "Trainer id" }, h("code", {}, trainer.trainer_id)),
          h("td", { "data-label": "Open classes" }, String(trainer.load ?? "—")),
          h("td", { "data-label": "Active" }, trainer.active ? "Yes" : "No"),
        ),
    );
    setOptions(trainerFilter, [["", "All trainers"], ...roster.map((t) => [t.trainer_id, t.name])]);
    if (!assignPanel.hidden) fillTrainerChoice();
  }

  main.append(boardSection, assignPanel, rosterSection);
  // The roster and the loads change rarely: read again every few seconds, not every poll.
  pollers.push(new Poller(refreshRoster, { interval: ROSTER_INTERVAL_MS, onError: (error) => showError(registerForm, error) }));
  return () => pollers.forEach((poller) => poller.stop());
}
