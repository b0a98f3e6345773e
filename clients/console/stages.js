// Where an order stands, from the status view's order and assignment statuses, and the
// list filters that select each stage (GET /v1/status/orders).

import { h } from "./dom.js";

export const STAGES = [
  { id: "all", label: "All", query: {} },
  {
    id: "awaiting",
    label: "Awaiting trainer",
    query: { order_status: "ORDER_STATUS_PLACED", assignment_status: "ASSIGNMENT_STATUS_AWAITING_TRAINER" },
  },
  {
    id: "assigned",
    label: "Assigned",
    query: { order_status: "ORDER_STATUS_PLACED", assignment_status: "ASSIGNMENT_STATUS_TRAINER_ASSIGNED" },
  },
  { id: "confirmed", label: "Confirmed", query: { order_status: "ORDER_STATUS_CONFIRMED" } },
  { id: "completed", label: "Completed", query: { order_status: "ORDER_STATUS_COMPLETED" } },
  { id: "cancelled", label: "Cancelled", query: { order_status: "ORDER_STATUS_CANCELLED" } },
];

/** The stage id of one OrderStatus of the status view. */
export function stageOf(status) {
  switch (status.order_status) {
    case "ORDER_STATUS_CANCELLED":
      return "cancelled";
    case "ORDER_STATUS_COMPLETED":
      return "completed";
    case "ORDER_STATUS_CONFIRMED":
      return "confirmed";
    default:
      return status.assignment_status === "ASSIGNMENT_STATUS_TRAINER_ASSIGNED" ? "assigned" : "awaiting";
  }
}

/** Still to be held: neither completed nor cancelled (what a trainer's load counts). */
export function isOpen(status) {
  return !["ORDER_STATUS_COMPLETED", "ORDER_STATUS_CANCELLED"].includes(status.order_status);
}

export function stageLabel(stage) {
  return STAGES.find((s) => s.id === stage)?.label || stage;
}

/** The stage as a badge; its text is the stage's name (colour is never the only cue). */
export function stageBadge(status) {
  const stage = stageOf(status);
  return h("span", { class: `badge badge-${stage}`, "data-stage": stage }, stageLabel(stage).toUpperCase());
}

const SCHEDULE_LABELS = {
  SCHEDULE_STATUS_REQUESTED: "requested",
  SCHEDULE_STATUS_CONFIRMED: "confirmed",
  SCHEDULE_STATUS_CLASS_COMPLETED: "completed",
  SCHEDULE_STATUS_CANCELLED: "cancelled",
};

/** A trainer's schedule status as a badge, in the same words as the board's stages. */
export function scheduleBadge(schedule) {
  const stage = SCHEDULE_LABELS[schedule.status] || "awaiting";
  const label = stage === "requested" ? "REQUESTED" : stageLabel(stage).toUpperCase();
  return h("span", { class: `badge badge-${stage}`, "data-stage": stage }, label);
}
