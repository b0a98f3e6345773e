// The public HTTP/JSON API, called with the signed-in user's own token.
// The token lives in sessionStorage only: sent in the Authorization header, never put
// in a URL, never written to the browser's console.

const SESSION_KEY = "ptplatform.console.session";
const NOTICE_KEY = "ptplatform.console.notice";

export const SESSION_ENDED = "Your session has ended, sign in again.";

/** The signed-in user {token, role, subject, expiresAt} or null. */
export function currentSession() {
  const text = sessionStorage.getItem(SESSION_KEY);
  if (!text) return null;
  try {
    const session = JSON.parse(text);
    if (!session.token || !session.role || !session.subject) return null;
    return session;
  } catch {
    return null;
  }
}

export function startSession({ token, role, subject, expires_in: expiresIn }) {
  const expiresAt = Date.now() + Number(expiresIn || 3600) * 1000;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token, role, subject, expiresAt }));
}

export function endSession(notice = "") {
  sessionStorage.removeItem(SESSION_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
}

/** A message left for the sign-in page (e.g. why the session ended), read once. */
export function takeNotice() {
  const notice = sessionStorage.getItem(NOTICE_KEY) || "";
  sessionStorage.removeItem(NOTICE_KEY);
  return notice;
}

/**
 * A refusal from the studio, read from the structured error body every API error has:
 * {code, message, details: [ErrorInfo {reason, metadata}, BadRequest {field_violations}]}.
 */
export class ApiError extends Error {
  constructor({ status = 0, code = 0, message = "", reason = "", metadata = {}, violations = [], network = false }) {
    super(message);
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.metadata = metadata;
    this.violations = violations;
    this.network = network;
  }

  static fromBody(status, body) {
    const details = Array.isArray(body?.details) ? body.details : [];
    const info = details.find((detail) => String(detail["@type"]).endsWith("google.rpc.ErrorInfo")) || {};
    const badRequest = details.find((detail) => String(detail["@type"]).endsWith("google.rpc.BadRequest")) || {};
    const violations = (badRequest.field_violations || badRequest.fieldViolations || []).map((violation) => ({
      field: violation.field || "",
      description: violation.description || "",
      reason: violation.reason || info.reason || "",
    }));
    return new ApiError({
      status,
      code: Number(body?.code || 0),
      message: String(body?.message || ""),
      reason: info.reason || "",
      metadata: info.metadata || {},
      violations,
    });
  }
}

/** The session ended or was refused: back to sign-in, saying so. */
function sessionEnded() {
  endSession(SESSION_ENDED);
  if (location.hash !== "#/sign-in") location.hash = "#/sign-in";
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== "" && value !== null && value !== undefined) params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * One call: resolves to the JSON body of a 2xx reply, rejects with an ApiError.
 * ``signedIn`` calls carry the token; a 401 on one ends the session.
 */
export async function call(method, path, { query, body, signedIn = true } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (signedIn) {
    const session = currentSession();
    if (!session || session.expiresAt <= Date.now()) {
      sessionEnded();
      throw new ApiError({ status: 401, reason: "TOKEN_EXPIRED", message: SESSION_ENDED });
    }
    headers.authorization = `Bearer ${session.token}`;
  }
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError({ network: true, message: "The studio is unreachable, retrying…" });
  }
  let parsed = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (response.ok) return parsed || {};
  const error = ApiError.fromBody(response.status, parsed || {});
  if (response.status === 401 && signedIn) sessionEnded();
  throw error;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body = {}) => call("POST", path, { body });

/** Every item of a paged List call (``items`` names the field, e.g. "statuses"). */
export async function listAll(path, query, items) {
  const found = [];
  let pageToken = "";
  do {
    const page = await get(path, { ...query, page_size: 100, page_token: pageToken });
    found.push(...(page[items] || []));
    pageToken = page.next_page_token || "";
  } while (pageToken);
  return found;
}

/**
 * Follows a List whose items only ever arrive at its end (notifications, class results,
 * oldest first): each ``fetch()`` reads from the last page it reached, and ``items``
 * holds every one seen, by ``key``.
 */
export class Follower {
  constructor(path, query, items, key) {
    Object.assign(this, { path, query, itemsField: items, key });
    this.byKey = new Map();
    this.lastPageToken = "";
  }

  async fetch() {
    let pageToken = this.lastPageToken;
    for (;;) {
      const page = await get(this.path, { ...this.query, page_size: 100, page_token: pageToken });
      for (const item of page[this.itemsField] || []) this.byKey.set(this.key(item), item);
      if (!page.next_page_token) break;
      pageToken = page.next_page_token;
      this.lastPageToken = pageToken;
    }
    return [...this.byKey.values()];
  }
}
