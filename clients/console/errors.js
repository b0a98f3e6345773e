// Refusals in the user's terms: from the structured details (ErrorInfo reason and
// metadata, BadRequest field violations), never the raw body. An unknown reason falls
// back to the studio's own message.

import { formatSlot } from "./dom.js";

/** How a form's fields read to the person filling it in. */
const FIELD_NAMES = {
  subject: "your id",
  role: "the role",
  customer_name: "your name",
  class_name: "the class",
  preferred_start: "the preferred start",
  start_time: "the start time",
  duration_minutes: "the duration",
  result: "the result",
  name: "the trainer's name",
  trainer_id: "the trainer",
  order_id: "the order",
  reason: "the reason",
};

function fieldName(field) {
  return FIELD_NAMES[field] || field.replaceAll("_", " ");
}

function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** One field's problem as a sentence. */
export function describeViolation({ field, reason, description }, metadata = {}) {
  const name = fieldName(field);
  switch (reason) {
    case "REQUIRED":
      return `Please fill in ${name}.`;
    case "INVALID_ID":
      if (field === "trainer_id") return "That is not a trainer id from the roster.";
      if (field === "order_id") return "That is not an order number the studio gives.";
      return `${capitalized(name)} may hold 1 to 64 letters, digits or . _ @ : - and must start with a letter or digit.`;
    case "TOO_LONG":
      return metadata.max_length
        ? `${capitalized(name)} is too long: at most ${metadata.max_length} characters.`
        : `${capitalized(name)} is too long.`;
    case "INVALID_CHARACTERS":
      return `${capitalized(name)} holds a character that is not allowed (a control character or line break).`;
    case "OUT_OF_RANGE":
      if (field === "duration_minutes" && metadata.min && metadata.max) {
        return `The duration must be between ${metadata.min} and ${metadata.max} minutes.`;
      }
      if (field === "start_time") return "That start time is too far in the future.";
      return `${capitalized(name)} is out of range.`;
    case "INVALID_ROLE":
      return "Choose customer, manager or trainer.";
    default:
      return description ? `${capitalized(name)}: ${description}` : `${capitalized(name)} is not accepted.`;
  }
}

const SENTENCES = {
  SCHEDULE_CLASH: (m, context) => {
    const clash = context.scheduleOf?.(m.clashing_order_id);
    const what = clash?.class_name ? `“${clash.class_name}” (order ${m.clashing_order_id})` : `order ${m.clashing_order_id}`;
    return `Double booking refused: you already teach ${what} at ${formatSlot(m.clashing_start_time, m.clashing_end_time)}. Choose a time that does not overlap it.`;
  },
  SCHEDULE_ALREADY_CONFIRMED: (m) =>
    `This class is already confirmed${m.start_time ? ` for ${formatSlot(m.start_time, m.end_time)}` : ""}; a confirmed class cannot be moved.`,
  SCHEDULE_NOT_CONFIRMED: () => "Confirm the class before recording its result.",
  SCHEDULE_CANCELLED: () => "This class was cancelled.",
  SCHEDULE_NOT_FOUND: () => "There is no such class in your schedule.",
  SCHEDULE_OF_ANOTHER_TRAINER: () => "This class is now with another trainer.",
  CLASS_ALREADY_HELD: () => "The class was already held, so it can no longer be cancelled.",
  CLASS_RESULT_ALREADY_REGISTERED: () => "A different result is already recorded for this class.",
  ORDER_NOT_FOUND: () => "There is no such order.",
  ORDER_STATUS_NOT_FOUND: () => "There is no such order.",
  ORDER_ALREADY_CANCELLED: () => "This order is already cancelled.",
  ASSIGNMENT_NOT_FOUND: () => "The studio has not seen this order yet; try again in a moment.",
  ASSIGNMENT_CLOSED: () => "This order no longer takes a trainer: it was cancelled or already confirmed.",
  ORDER_ALREADY_CONFIRMED: () => "This order is already confirmed; its trainer can no longer change.",
  TRAINER_NOT_FOUND: () => "That trainer is not on the roster.",
  TRAINER_INACTIVE: () => "That trainer is not active on the roster.",
  PERMISSION_DENIED: () => "You may not see or change this: it is not yours.",
  ROLE_NOT_ALLOWED: (m) => `A ${m.role || "user in your role"} may not do this.`,
  CONCURRENT_CHANGE: () => "Someone changed this at the same moment; please try again.",
  RATE_LIMITED: () => "The studio is busy right now; please try again in a moment.",
  LIMIT_REACHED: (m, context, error) => `A limit was reached: ${error.message}`,
  UNAVAILABLE: () => "Part of the studio is not answering right now; please try again shortly.",
  DEADLINE_EXCEEDED: () => "The studio took too long to answer; please try again.",
  UNAUTHENTICATED: () => "Your session has ended, sign in again.",
  TOKEN_EXPIRED: () => "Your session has ended, sign in again.",
};

const BY_STATUS = {
  401: "Your session has ended, sign in again.",
  403: "You may not see or change this: it is not yours.",
  404: "There is no such thing here.",
  429: "The studio is busy right now; please try again in a moment.",
  503: "Part of the studio is not answering right now; please try again shortly.",
  504: "The studio took too long to answer; please try again.",
};

/**
 * The sentence for a whole refusal. ``context.scheduleOf(orderId)`` lets the clash name
 * the class it clashes with.
 */
export function describe(error, context = {}) {
  if (error.network) return "The studio is unreachable, retrying…";
  const sentence = SENTENCES[error.reason];
  if (sentence) return sentence(error.metadata || {}, context, error);
  if (error.violations?.length) return error.violations.map((v) => describeViolation(v, error.metadata)).join(" ");
  if (error.message) return capitalized(error.message.trim()).replace(/([^.!?])$/, "$1.");
  return BY_STATUS[error.status] || "Something went wrong; please try again.";
}

/** Clear what ``showError`` put on ``form``. */
export function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
  const status = form.querySelector(".form-status");
  if (status) {
    status.textContent = "";
    status.classList.remove("error", "success");
  }
}

/**
 * Show a refusal on ``form``: each field violation next to the field it names (the
 * control marked aria-invalid), the rest in the form's status line.
 */
export function showError(form, error, context = {}) {
  clearErrors(form);
  let placed = 0;
  for (const violation of error.violations || []) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(violation.field)}"]`);
    if (!slot) continue;
    slot.textContent = describeViolation(violation, error.metadata);
    const control = form.querySelector(`[name="${CSS.escape(violation.field)}"]`);
    if (control) control.setAttribute("aria-invalid", "true");
    placed += 1;
  }
  const status = form.querySelector(".form-status");
  if (!status) return;
  status.classList.add("error");
  status.textContent = placed
    ? placed === 1
      ? "Please correct the field marked below."
      : "Please correct the fields marked below."
    : describe(error, context);
  if (placed) form.querySelector("[aria-invalid]")?.focus();
}

/** A success line on ``form``. */
export function showSuccess(form, text) {
  clearErrors(form);
  const status = form.querySelector(".form-status");
  if (status) {
    status.classList.add("success");
    status.textContent = text;
  }
}
