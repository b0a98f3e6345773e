// Next / Previous over a paged List (AIP-158 page tokens): the tokens of the pages
// before the current one are kept, so Previous goes back exactly.

import { h } from "./dom.js";

export class Pager {
  constructor(onChange, label) {
    this.onChange = onChange;
    this.tokens = [""];
    this.next = "";
    this.previousButton = h("button", { type: "button", class: "secondary", onclick: () => this.back() }, "Previous");
    this.nextButton = h("button", { type: "button", class: "secondary", onclick: () => this.forward() }, "Next");
    this.position = h("span", { class: "page-position", "aria-live": "polite" });
    this.element = h("nav", { class: "pager", "aria-label": label }, this.previousButton, this.position, this.nextButton);
    this.update("");
  }

  /** The token of the page shown. */
  get token() {
    return this.tokens[this.tokens.length - 1];
  }

  /** After a page arrived: its next_page_token. */
  update(nextPageToken) {
    this.next = nextPageToken || "";
    this.previousButton.disabled = this.tokens.length === 1;
    this.nextButton.disabled = !this.next;
    const text = `Page ${this.tokens.length}`;
    if (this.position.textContent !== text) this.position.textContent = text;
  }

  reset() {
    this.tokens = [""];
    this.update("");
  }

  forward() {
    if (!this.next) return;
    this.tokens.push(this.next);
    this.update("");
    this.onChange();
  }

  back() {
    if (this.tokens.length === 1) return;
    this.tokens.pop();
    this.update("");
    this.onChange();
  }
}
