// The trainer's schedule: requests to confirm (with a start time and a duration) and
// confirmed classes to record a result for. A double booking is refused by the studio;
// the refusal names the class it clashes with.

import { listAll, post } from "./api.js";
import { field, formPanel, formatSlot, formatTime, h, localInputToUtc, replaceChildren, setText, syncRows } from "./dom.js";
import { describe, showError, showSuccess } from "./errors.js";
import { Poller } from "./poll.js";
import { scheduleBadge } from "./stages.js";

function endOf(schedule) {
  if (!schedule.start_time || !schedule.duration_minutes) return "";
  return new Date(new Date(schedule.start_time).getTime() + schedule.duration_minutes * 60000).toISOString();
}

export function trainerView(main, session) {
  let schedules = [];
  const scheduleOf = (orderId) => schedules.find((s) => s.order_id === orderId);

  function table(id, title, columns) {
    const body = h("tbody", {});
    const element = h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "cards", id },
        h("caption", {}, title),
        h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        body,
      ),
    );
    return { body, element };
  }

  const requested = table("requested", "Requests to confirm", ["Class", "Customer", "Status", "Asked"]);
  const booked = table("confirmed", "Confirmed, held and cancelled classes", ["Class", "Customer", "Status", "When", "Result"]);
  const message = h("p", { class: "form-status", role: "status" });

  // -- confirming --------------------------------------------------------------------
  const startInput = h("input", { type: "datetime-local", required: true, step: 60 });
  const durationInput = h("input", { type: "number", min: 1, max: 480, step: 1, value: 60, required: true, inputmode: "numeric" });
  const {
    panel: confirmPanel,
    form: confirmForm,
    summary: confirmSummary,
    submit: confirmButton,
  } = formPanel({
    id: "confirm-panel",
    title: "Confirm a class",
    fields: [
      field({ id: "confirm-start", name: "start_time", label: "Start (your local time)", control: startInput }),
      field({ id: "confirm-duration", name: "duration_minutes", label: "Duration in minutes", control: durationInput }),
    ],
    submitLabel: "Confirm class",
    onClose: () => closePanels(),
  });

  // -- recording a result ------------------------------------------------------------
  const resultInput = h("textarea", { rows: 3, maxlength: 2000, required: true });
  const {
    panel: resultPanel,
    form: resultForm,
    summary: resultSummary,
    submit: resultButton,
  } = formPanel({
    id: "result-panel",
    title: "Record a class result",
    fields: [field({ id: "result-text", name: "result", label: "How the class went", control: resultInput })],
    submitLabel: "Record result",
    onClose: () => closePanels(),
  });

  let acting = null;

  function describeSchedule(schedule) {
    return [h("strong", {}, schedule.class_name), ` for customer ${schedule.customer_id}`];
  }

  function openConfirm(schedule) {
    closePanels();
    acting = schedule;
    replaceChildren(confirmSummary, ...describeSchedule(schedule));
    showSuccess(confirmForm, "");
    confirmPanel.hidden = false;
    startInput.focus();
  }

  function openResult(schedule) {
    closePanels();
    acting = schedule;
    replaceChildren(resultSummary, ...describeSchedule(schedule), `, ${formatSlot(schedule.start_time, endOf(schedule))}`);
    showSuccess(resultForm, "");
    resultPanel.hidden = false;
    resultInput.focus();
  }

  function closePanels() {
    confirmPanel.hidden = true;
    resultPanel.hidden = true;
    acting = null;
  }

  confirmForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!acting || confirmButton.disabled) return;
    const start = localInputToUtc(startInput.value);
    if (!start) {
      showError(confirmForm, { violations: [{ field: "start_time", reason: "REQUIRED" }] });
      return;
    }
    confirmButton.disabled = true;
    try {
      const schedule = await post(`/v1/schedules/${encodeURIComponent(acting.order_id)}:confirm`, {
        start_time: start,
        duration_minutes: Number.parseInt(durationInput.value, 10) || 0,
      });
      showSuccess(confirmForm, `Confirmed: ${schedule.class_name}, ${formatSlot(schedule.start_time, endOf(schedule))}.`);
      poller.now();
    } catch (error) {
      showError(confirmForm, error, { scheduleOf });
    } finally {
      confirmButton.disabled = false;
    }
  });

  resultForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!acting || resultButton.disabled) return;
    resultButton.disabled = true;
    try {
      const schedule = await post(`/v1/schedules/${encodeURIComponent(acting.order_id)}:result`, { result: resultInput.value });
      resultInput.value = "";
      showSuccess(resultForm, `Result recorded for ${schedule.class_name}.`);
      poller.now();
    } catch (error) {
      showError(resultForm, error, { scheduleOf });
    } finally {
      resultButton.disabled = false;
    }
  });

  // -- the lists ---------------------------------------------------------------------
  function actionButton(label, schedule, onclick) {
    return h("button", { type: "button", class: "small", "aria-label": `${label}: ${schedule.class_name} for ${schedule.customer_id}`, onclick: () => onclick(schedule) }, label);
  }

  /** A schedule's row: its class, customer and status, then ``cells``. */
  function scheduleRow(schedule, ...cells) {
    return h(
      "tr",
      { "data-order-id": schedule.order_id },
      h("th", { scope: "row", "data-label": "Class" }, schedule.class_name),
      h("td", { "data-label": "Customer" }, schedule.customer_id),
      h("td", { "data-label": "Status" }, scheduleBadge(schedule)),
      ...cells,
    );
  }

  function renderRequested(schedule) {
    return scheduleRow(
      schedule,
      h("td", { "data-label": "Asked" }, formatTime(schedule.update_time)),
      h("td", { "data-label": "Actions", class: "actions" }, actionButton("Confirm", schedule, openConfirm)),
    );
  }

  function renderBooked(schedule) {
    const confirmed = schedule.status === "SCHEDULE_STATUS_CONFIRMED";
    return scheduleRow(
      schedule,
      h("td", { "data-label": "When" }, formatSlot(schedule.start_time, endOf(schedule))),
      h("td", { "data-label": "Result" }, schedule.class_result || "—"),
      h("td", { "data-label": "Actions", class: "actions" }, confirmed ? actionButton("Record result", schedule, openResult) : null),
    );
  }

  function fill(body, items, render, empty) {
    if (items.length) syncRows(body, items, (s) => s.order_id, render);
    else syncRows(body, [{}], () => "empty", () => h("tr", { class: "empty" }, h("td", { colspan: 6 }, empty)));
  }

  async function refresh() {
    schedules = await listAll("/v1/schedules", { trainer_id: session.subject }, "schedules");
    fill(requested.body, schedules.filter((s) => s.status === "SCHEDULE_STATUS_REQUESTED"), renderRequested, "No requests waiting.");
    fill(
      booked.body,
      schedules.filter((s) => ["SCHEDULE_STATUS_CONFIRMED", "SCHEDULE_STATUS_CLASS_COMPLETED", "SCHEDULE_STATUS_CANCELLED"].includes(s.status)),
      renderBooked,
      "No confirmed classes yet.",
    );
    setText(message, "");
  }

  const poller = new Poller(refresh, { onError: (error) => setText(message, describe(error)) });

  main.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "trainer-title" },
      h("h1", { id: "trainer-title" }, "My schedule"),
      h("p", { class: "hint" }, `Trainer id ${session.subject}. Times are shown in your local time.`),
      requested.element,
      message,
    ),
    confirmPanel,
    resultPanel,
    h("section", { class: "card", "aria-labelledby": "booked-title" }, h("h2", { id: "booked-title" }, "Classes"), booked.element),
  );
  return () => poller.stop();
}
