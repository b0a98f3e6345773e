// Sign-in for development: POST /console/dev/sign-in mints a token for the role and id
// chosen. A studio that runs without it (production) answers 404: then the page says to
// sign in through the studio's identity provider.

import { ApiError, call, startSession, takeNotice } from "./api.js";
import { field, h } from "./dom.js";
import { clearErrors, showError } from "./errors.js";

const ROLES = [
  { role: "customer", label: "Customer", idLabel: "Your customer id", hint: "The name-id you book under, e.g. alice." },
  { role: "manager", label: "Manager", idLabel: "Your manager id", hint: "Your staff id, e.g. studio-manager." },
  { role: "trainer", label: "Trainer", idLabel: "Your trainer id", hint: "The id on the manager's roster (shown when you were registered)." },
];

export function signInView(main) {
  const notice = takeNotice();
  const subject = h("input", { type: "text", autocomplete: "username", required: true, maxlength: 64, spellcheck: "false", autocapitalize: "none" });
  const idField = field({ id: "sign-in-subject", name: "subject", label: ROLES[0].idLabel, hint: ROLES[0].hint, control: subject });
  const submit = h("button", { type: "submit" }, "Sign in");

  const choices = ROLES.map(({ role, label }, index) =>
    h(
      "div",
      { class: "choice" },
      h("input", { type: "radio", name: "role", id: `sign-in-role-${role}`, value: role, checked: index === 0 }),
      h("label", { for: `sign-in-role-${role}` }, label),
    ),
  );
  const form = h(
    "form",
    { class: "card narrow", novalidate: true, "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to the studio"),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    h("fieldset", { class: "choices" }, h("legend", {}, "I am a"), ...choices, h("p", { class: "field-error", "data-error-for": "role" })),
    idField,
    h("p", { class: "form-status", role: "alert" }),
    submit,
    h("p", { class: "hint" }, "Development sign-in: the studio mints a token for the id you give. It is kept in this tab only."),
  );

  form.addEventListener("change", (event) => {
    if (event.target.name !== "role") return;
    const chosen = ROLES.find((r) => r.role === event.target.value);
    idField.querySelector("label").textContent = chosen.idLabel;
    idField.querySelector(".hint").textContent = chosen.hint;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const role = new FormData(form).get("role");
    submit.disabled = true;
    try {
      const reply = await call("POST", "/console/dev/sign-in", {
        body: { role, subject: subject.value.trim() },
        signedIn: false,
      });
      startSession(reply);
      location.hash = `#/${reply.role}`;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        showError(form, new ApiError({ message: "Development sign-in is off on this studio. Sign in through the studio's identity provider." }));
      } else {
        showError(form, error);
      }
    } finally {
      submit.disabled = false;
    }
  });

  main.append(form);
  subject.focus();
  return () => {};
}
