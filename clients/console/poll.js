// Views that refresh themselves: one call in flight at a time, paused while the tab is
// hidden, stopped when the view goes away. A network failure shows the "unreachable"
// banner until a call gets through again.

const INTERVAL_MS = 750;

let unreachable = 0;

function showReachability() {
  const banner = document.getElementById("reachability");
  if (!banner) return;
  banner.hidden = unreachable === 0;
  banner.textContent = unreachable ? "The studio is unreachable, retrying…" : "";
}

/** A poller that calls ``refresh()`` now and then every ``interval`` ms until stopped. */
export class Poller {
  constructor(refresh, { interval = INTERVAL_MS, onError = () => {} } = {}) {
    this.refresh = refresh;
    this.interval = interval;
    this.onError = onError;
    this.timer = null;
    this.running = false;
    this.stopped = false;
    this.failing = false;
    this.visibility = () => {
      if (document.visibilityState === "visible") this.now();
    };
    document.addEventListener("visibilitychange", this.visibility);
    this.now();
  }

  /** Refresh as soon as the call in flight (if any) is done. */
  now() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.running) {
      this.again = true;
      return;
    }
    this.tick();
  }

  async tick() {
    if (this.stopped || document.visibilityState === "hidden") return;
    this.running = true;
    try {
      await this.refresh();
      this.reachable(true);
    } catch (error) {
      this.reachable(!error.network);
      if (!error.network) this.onError(error);
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    const delay = this.again ? 0 : this.interval;
    this.again = false;
    this.timer = setTimeout(() => this.tick(), delay);
  }

  reachable(yes) {
    if (yes === !this.failing) return;
    this.failing = !yes;
    unreachable += this.failing ? 1 : -1;
    showReachability();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.visibility);
    this.reachable(true);
  }
}
