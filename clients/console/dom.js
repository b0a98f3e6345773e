// Small DOM helpers: elements are built with text nodes only (never innerHTML), so
// nothing the studio returns can become markup, and no inline style ever appears
// (the Content-Security-Policy forbids it).

/**
 * An element: h("button", {type: "button", class: "link", onclick: fn}, "Assign").
 * Attributes whose value is null, undefined or false are left out; "on..." keys
 * become event listeners; children are nodes or strings (added as text).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of ``element`` with ``children``. */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** Set an element's text only when it changes (no needless announcements in live regions). */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

/** An RFC 3339 time from the API, in the user's local time; "—" when unset. */
export function formatTime(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "—" : WHEN.format(date);
}

/** A time slot "3 Dec 2026, 10:00 – 11:00" from two RFC 3339 times. */
export function formatSlot(start, end) {
  if (!start) return "—";
  return end ? `${formatTime(start)} – ${TIME.format(new Date(end))}` : formatTime(start);
}

/** The value of a datetime-local input (local time) as RFC 3339 UTC, or "" when empty. */
export function localInputToUtc(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/**
 * Keep ``container``'s children in step with ``items`` (keyed by ``key(item)``): a row
 * whose item did not change is left as it is (focus and open details survive a poll);
 * a changed one is rebuilt by ``render(item)``; others are added, moved or removed.
 */
export function syncRows(container, items, key, render) {
  const existing = new Map();
  for (const row of container.children) existing.set(row.dataset.key, row);
  items.forEach((item, index) => {
    const id = key(item);
    const signature = JSON.stringify(item);
    let row = existing.get(id);
    if (!row || row.dataset.signature !== signature) {
      const fresh = render(item);
      fresh.dataset.key = id;
      fresh.dataset.signature = signature;
      if (row) row.replaceWith(fresh);
      row = fresh;
    }
    existing.delete(id);
    if (container.children[index] !== row) container.insertBefore(row, container.children[index] || null);
  });
  for (const row of existing.values()) row.remove();
}

/** A labelled form control with its hint and the place its error goes. */
export function field({ id, label, control, hint, name }) {
  const errorId = `${id}-error`;
  const described = [hint ? `${id}-hint` : null, errorId].filter(Boolean).join(" ");
  control.id = id;
  control.setAttribute("aria-describedby", described);
  if (name) control.name = name;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    control,
    h("p", { class: "field-error", id: errorId, "data-error-for": name || id }),
  );
}

/**
 * A panel holding one form: a heading, a summary line of what it acts on, the fields,
 * a status line for the outcome and the submit and Close buttons. Starts hidden.
 */
export function formPanel({ id, title, fields, submitLabel, onClose }) {
  const summary = h("p", {});
  const submit = h("button", { type: "submit" }, submitLabel);
  const form = h(
    "form",
    { novalidate: true },
    ...fields,
    h("p", { class: "form-status", role: "alert" }),
    h("div", { class: "buttons" }, submit, h("button", { type: "button", class: "secondary", onclick: onClose }, "Close")),
  );
  const panel = h(
    "section",
    { class: "card panel", id, "aria-labelledby": `${id}-title`, hidden: true },
    h("h2", { id: `${id}-title` }, title),
    summary,
    form,
  );
  return { panel, form, summary, submit };
}
