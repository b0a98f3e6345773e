// The console's router: #/sign-in, #/manager, #/trainer, #/customer and
// #/customer/orders/<order_id>. Each view mounts into <main> and returns a function that
// stops it (its pollers) when the route changes.

import { currentSession, endSession } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { customerView, orderDetailView } from "./customer.js";
import { managerView } from "./manager.js";
import { signInView } from "./signin.js";
import { trainerView } from "./trainer.js";

const ROLE_VIEWS = { manager: managerView, trainer: trainerView, customer: customerView };
const ROLE_TITLES = { manager: "Manager's board", trainer: "Trainer's schedule", customer: "My classes" };

let stopView = () => {};

function route() {
  const session = currentSession();
  const path = location.hash.replace(/^#/, "") || "/";
  const main = document.getElementById("main");
  stopView();
  stopView = () => {};
  replaceChildren(main);
  renderNav(session);

  if (path === "/sign-in" || !session) {
    if (path !== "/sign-in") {
      history.replaceState(null, "", "#/sign-in");
    }
    document.title = "Sign in · PtPlatform studio";
    stopView = signInView(main) || stopView;
    return;
  }
  const detail = path.match(/^\/customer\/orders\/([^/]+)$/);
  if (detail && session.role === "customer") {
    document.title = "Order · PtPlatform studio";
    stopView = orderDetailView(main, session, decodeURIComponent(detail[1]));
    return;
  }
  const wanted = `/${session.role}`;
  if (path !== wanted) {
    history.replaceState(null, "", `#${wanted}`);
  }
  document.title = `${ROLE_TITLES[session.role]} · PtPlatform studio`;
  const view = ROLE_VIEWS[session.role];
  if (!view) {
    endSession();
    location.hash = "#/sign-in";
    return;
  }
  stopView = view(main, session);
}

function renderNav(session) {
  const nav = document.getElementById("console-nav");
  if (!session) {
    replaceChildren(nav);
    return;
  }
  replaceChildren(
    nav,
    h("a", { href: `#/${session.role}` }, ROLE_TITLES[session.role]),
    h("span", { class: "identity" }, `Signed in as ${session.role} `, h("strong", {}, session.subject)),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          endSession("You have signed out.");
          if (location.hash === "#/sign-in") route();
          else location.hash = "#/sign-in";
        },
      },
      "Sign out",
    ),
  );
}

window.addEventListener("hashchange", route);
route();
