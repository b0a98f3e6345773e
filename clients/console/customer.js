// The customer's view: book a class (a request id per booking, so a double click or a
// retry books once), my orders and their stage, cancel, my class results, and
// notifications arriving live. One order's page: #/customer/orders/<order_id>.

import { Follower, get, post } from "./api.js";
import { field, formatTime, h, localInputToUtc, replaceChildren, setText, syncRows } from "./dom.js";
import { describe, showError, showSuccess } from "./errors.js";
import { Pager } from "./pager.js";
import { Poller } from "./poll.js";
import { isOpen, stageBadge, stageOf } from "./stages.js";

const PAGE_SIZE = 20;

async function cancelOrder(status, say) {
  try {
    await post(`/v1/orders/${encodeURIComponent(status.order_id)}:cancel`, { reason: "cancelled by the customer" });
    say(`${status.class_name} is cancelled.`, "success");
    return true;
  } catch (error) {
    say(describe(error), "error");
    return false;
  }
}

function cancelButton(status, say, after) {
  return h(
    "button",
    {
      type: "button",
      class: "small danger",
      "aria-label": `Cancel ${status.class_name}`,
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        if (!(await cancelOrder(status, say))) button.disabled = false;
        after();
      },
    },
    "Cancel",
  );
}

function sayer(element) {
  return (text, kind) => {
    element.classList.remove("error", "success");
    if (kind) element.classList.add(kind);
    setText(element, text);
  };
}

export function customerView(main, session) {
  const pollers = [];

  // -- booking -----------------------------------------------------------------------
  const nameInput = h("input", { type: "text", required: true, maxlength: 200, autocomplete: "name" });
  const classInput = h("input", { type: "text", required: true, maxlength: 200, autocomplete: "off" });
  const startInput = h("input", { type: "datetime-local", step: 60 });
  const bookButton = h("button", { type: "submit" }, "Book");
  const bookForm = h(
    "form",
    { novalidate: true, id: "book-form" },
    field({ id: "book-name", name: "customer_name", label: "Your name", control: nameInput }),
    field({ id: "book-class", name: "class_name", label: "Class", hint: "For example: Yoga, Pilates, Boxing basics.", control: classInput }),
    field({ id: "book-start", name: "preferred_start", label: "Preferred start (optional, your local time)", control: startInput }),
    h("p", { class: "form-status", role: "alert" }),
    bookButton,
  );
  let requestId = "";
  bookForm.addEventListener("input", () => {
    requestId = "";
  });
  bookForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (bookButton.disabled) return;
    requestId ||= crypto.randomUUID();
    bookButton.disabled = true;
    const body = { customer_name: nameInput.value.trim(), class_name: classInput.value.trim(), request_id: requestId };
    const preferred = localInputToUtc(startInput.value);
    if (preferred) body.preferred_start = preferred;
    try {
      const order = await post("/v1/orders", body);
      requestId = "";
      classInput.value = "";
      startInput.value = "";
      showSuccess(bookForm, `Booked: ${order.class_name}. The studio will assign a trainer.`);
      orders.now();
    } catch (error) {
      showError(bookForm, error);
    } finally {
      bookButton.disabled = false;
    }
  });

  // -- my orders -----------------------------------------------------------------------
  const orderRows = h("tbody", {});
  const ordersMessage = h("p", { class: "form-status", role: "status" });
  const say = sayer(ordersMessage);
  const pager = new Pager(() => orders.now(), "Order pages");

  function renderOrder(status) {
    return h(
      "tr",
      { "data-order-id": status.order_id, "data-stage": stageOf(status) },
      h("th", { scope: "row", "data-label": "Class" }, h("a", { href: `#/customer/orders/${encodeURIComponent(status.order_id)}` }, status.class_name)),
      h("td", { "data-label": "Stage" }, stageBadge(status)),
      h("td", { "data-label": "Trainer" }, status.trainer_name || "—"),
      h("td", { "data-label": "Starts" }, formatTime(status.start_time)),
      h("td", { "data-label": "Updated" }, formatTime(status.update_time)),
      h("td", { "data-label": "Actions", class: "actions" }, isOpen(status) ? cancelButton(status, say, () => orders.now()) : null),
    );
  }

  async function refreshOrders() {
    const page = await get("/v1/status/orders", { customer_id: session.subject, page_size: PAGE_SIZE, page_token: pager.token });
    const statuses = page.statuses || [];
    if (statuses.length) syncRows(orderRows, statuses, (s) => s.order_id, renderOrder);
    else syncRows(orderRows, [{}], () => "empty", () => h("tr", { class: "empty" }, h("td", { colspan: 6 }, "No orders yet: book a class above.")));
    pager.update(page.next_page_token);
  }
  const orders = new Poller(refreshOrders, { onError: (error) => say(describe(error), "error") });
  pollers.push(orders);

  // -- results and notifications -------------------------------------------------------
  const resultRows = h("tbody", {});
  const results = new Follower(`/v1/status/customers/${encodeURIComponent(session.subject)}/results`, {}, "results", (r) => r.order_id);
  const notificationList = h("ol", { class: "notifications", id: "notifications" });
  const announcer = h("p", { class: "visually-hidden", "aria-live": "polite", id: "notification-announcer" });
  const notifications = new Follower(
    `/v1/status/customers/${encodeURIComponent(session.subject)}/notifications`,
    {},
    "notifications",
    (n) => n.notification_id,
  );
  let seenNotifications = null;

  async function refreshFeeds() {
    const [recorded, arrived] = await Promise.all([results.fetch(), notifications.fetch()]);
    recorded.sort((a, b) => String(b.record_time).localeCompare(String(a.record_time)));
    if (recorded.length) {
      syncRows(resultRows, recorded, (r) => r.order_id, (result) =>
        h(
          "tr",
          { "data-order-id": result.order_id },
          h("th", { scope: "row", "data-label": "Class" }, result.class_name),
          h("td", { "data-label": "Trainer" }, result.trainer_name || result.trainer_id),
          h("td", { "data-label": "Result" }, result.result),
          h("td", { "data-label": "Recorded" }, formatTime(result.record_time)),
        ),
      );
    } else {
      syncRows(resultRows, [{}], () => "empty", () => h("tr", { class: "empty" }, h("td", { colspan: 4 }, "No class results yet.")));
    }
    arrived.sort((a, b) => Number(b.sequence) - Number(a.sequence));
    const fresh = seenNotifications ? arrived.filter((n) => !seenNotifications.has(n.notification_id)) : [];
    seenNotifications = new Set(arrived.map((n) => n.notification_id));
    if (arrived.length) {
      syncRows(notificationList, arrived, (n) => n.notification_id, (n) =>
        h("li", { "data-notification-id": n.notification_id }, h("span", { class: "message" }, n.message), " ", h("time", { datetime: n.create_time }, formatTime(n.create_time))),
      );
    } else {
      syncRows(notificationList, [{}], () => "empty", () => h("li", { class: "empty" }, "Nothing yet."));
    }
    if (fresh.length) setText(announcer, `New: ${fresh.map((n) => n.message).join(". ")}`);
  }
  pollers.push(new Poller(refreshFeeds, { interval: 1000 }));

  main.append(
    h("section", { class: "card", "aria-labelledby": "book-title" }, h("h1", { id: "book-title" }, "Book a class"), bookForm),
    h(
      "section",
      { class: "card", "aria-labelledby": "notifications-title" },
      h("h2", { id: "notifications-title" }, "Notifications"),
      notificationList,
      announcer,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "orders-title" },
      h("h2", { id: "orders-title" }, "My orders"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "cards", id: "my-orders" },
          h("caption", {}, "Your orders, most recently changed first"),
          h(
            "thead",
            {},
            h("tr", {}, ...["Class", "Stage", "Trainer", "Starts", "Updated"].map((c) => h("th", { scope: "col" }, c)), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions"))),
          ),
          orderRows,
        ),
      ),
      ordersMessage,
      pager.element,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "results-title" },
      h("h2", { id: "results-title" }, "My class results"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "cards", id: "my-results" },
          h("caption", {}, "What your trainers recorded"),
          h("thead", {}, h("tr", {}, ...["Class", "Trainer", "Result", "Recorded"].map((c) => h("th", { scope: "col" }, c)))),
          resultRows,
        ),
      ),
    ),
  );
  nameInput.focus();
  return () => pollers.forEach((poller) => poller.stop());
}

/** One order; someone else's (or an unknown) order id shows a refusal and no data. */
export function orderDetailView(main, session, orderId) {
  const body = h("div", { id: "order-detail" });
  const message = h("p", { class: "form-status", role: "alert" });
  const say = sayer(message);
  main.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "detail-title" },
      h("p", {}, h("a", { href: "#/customer" }, "← Back to my classes")),
      h("h1", { id: "detail-title" }, "Order"),
      message,
      body,
    ),
  );
  let refused = false;
  let shown = "";

  async function refresh() {
    if (refused) return;
    let status;
    try {
      status = await get(`/v1/status/orders/${encodeURIComponent(orderId)}`);
    } catch (error) {
      if ([400, 403, 404].includes(error.status)) {
        refused = true;
        replaceChildren(body);
        say(
          error.status === 404 || error.reason === "ORDER_STATUS_NOT_FOUND"
            ? "There is no order with this number among yours."
            : error.status === 400
              ? "This is not an order number the studio gives."
              : "This order is not yours, so it cannot be shown.",
          "error",
        );
        poller.stop();
        return;
      }
      throw error;
    }
    const signature = JSON.stringify(status);
    if (signature === shown) return;
    shown = signature;
    const rows = [
      ["Class", status.class_name],
      ["Stage", stageBadge(status)],
      ["Trainer", status.trainer_name || "—"],
      ["Starts", formatTime(status.start_time)],
      ["Class result", status.class_result || "—"],
      ["Updated", formatTime(status.update_time)],
    ];
    if (status.cancellation_refused_reason) rows.push(["Cancellation refused", status.cancellation_refused_reason]);
    replaceChildren(
      body,
      h("dl", { class: "details" }, ...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      isOpen(status) ? cancelButton(status, say, () => poller.now()) : null,
    );
  }
  const poller = new Poller(refresh, { onError: (error) => say(describe(error), "error") });
  return () => poller.stop();
}
