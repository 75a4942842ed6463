// Integrations broker: the Connect SDK. An ES module with no dependencies, served by the broker at /connect.js.
//
//   import { connect } from "https://broker.example.com/connect.js";
//   const { integrationId } = await connect({ session, provider: "google" });
//
// The popup's result arrives two ways: a postMessage from the broker's result page (to this page's exact origin),
// and, authoritatively, GET /connect/flows/{flow_id}, long-polled here (popups lose their opener under COOP).

const MESSAGE = "broker:connect";
const FLOW_STARTED = "broker:flow";
const POPUP_FEATURES = "popup,width=520,height=720";
const POLL_WAIT = 10; // seconds a status read may be held by the broker
const CLOSED_CHECK_MS = 500;
const CLOSED_GRACE = 2; // seconds: after the popup closed, how long the status may still turn final
const ERROR_CODES = { access_denied: "denied", expired: "expired" };

/** A failed connect: `code` is stable (`cancelled`, `denied`, `expired`, `provider_error`, `popup_blocked`, …). */
export class ConnectError extends Error {
  constructor(code, message, details = {}) {
    super(message);
    this.name = "ConnectError";
    this.code = code;
    Object.assign(this, details);
  }
}

function moduleOrigin() {
  try {
    const url = new URL(import.meta.url);
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

function brokerBase(options) {
  const base = options.broker ?? moduleOrigin();
  if (!base) throw new ConnectError("configuration", "pass `broker` (the broker's URL) when the SDK is bundled");
  return String(base).replace(/\/+$/, "");
}

async function authorization(options) {
  if (options.session) return `Bearer ${options.session}`;
  if (options.getIdToken) return `Bearer ${await options.getIdToken()}`;
  throw new ConnectError("unauthenticated", "pass `session` (a connect session token) or `getIdToken`");
}

async function call(options, method, path, body, signal) {
  const headers = { Authorization: await authorization(options) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const fetcher = options.fetch ?? globalThis.fetch;
  let response;
  try {
    response = await fetcher(brokerBase(options) + path, {
      method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
      // An ID-token flow is bound to this browser by a cookie; a session token needs none.
      credentials: options.session ? "omit" : "include",
    });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ConnectError("network_error", `the broker could not be reached: ${error?.message ?? error}`);
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const code = answer?.error?.code ?? `http_${response.status}`;
    throw new ConnectError(code, answer?.error?.message ?? `the broker answered ${response.status}`, {
      status: response.status,
    });
  }
  return answer;
}

function startBody(options, mode) {
  const body = { provider: options.provider, mode };
  if (options.scopes) body.scopes = options.scopes;
  if (options.integrationId) body.integration_id = options.integrationId;
  if (options.label) body.label = options.label;
  if (mode === "redirect" && options.returnTo) body.return_to = options.returnTo;
  return body;
}

function failure(status, flowId) {
  if (status.status === "expired") return new ConnectError("expired", "the connection was not finished in time", { flowId });
  const error = status.error ?? "provider_error";
  const message = status.error_description ?? `the connection failed (${error})`;
  return new ConnectError(ERROR_CODES[error] ?? error, message, { flowId, providerError: error });
}

function success(status, flowId) {
  return { integrationId: status.integration_id, status: "connected", flowId };
}

// Settles on the first of: the result page's message, a final status from the broker, or the popup closing.
function follow(options, win, popup, initialFlowId, anyFlow = false) {
  const origin = new URL(brokerBase(options)).origin;
  return new Promise((resolve, reject) => {
    let flowId = initialFlowId;
    let done = false;
    let polling = false;
    const controller = new AbortController();
    const timer = win.setInterval(onTick, CLOSED_CHECK_MS);

    function finish(settle, value) {
      if (done) return;
      done = true;
      win.removeEventListener("message", onMessage);
      win.clearInterval(timer);
      controller.abort();
      try {
        if (!popup.closed) popup.close();
      } catch {
        /* a severed popup may refuse */
      }
      settle(value);
    }
    function settle(status) {
      if (status.status === "connected") finish(resolve, success(status, flowId));
      else if (status.status !== "pending") finish(reject, failure(status, flowId));
    }
    function onMessage(event) {
      if (event.origin !== origin || !event.data || typeof event.data !== "object") return;
      const data = event.data;
      if (data.type === FLOW_STARTED && !flowId && typeof data.flow_id === "string") {
        flowId = data.flow_id;
        poll();
      } else if (data.type === MESSAGE && (anyFlow || data.flow_id === flowId)) {
        flowId = data.flow_id ?? flowId;
        settle(data);
      }
    }
    async function status(wait) {
      const path = `/connect/flows/${encodeURIComponent(flowId)}?wait=${wait}`;
      return call(options, "GET", path, undefined, controller.signal);
    }
    async function poll() {
      if (polling || !flowId) return;
      polling = true;
      while (!done) {
        try {
          const answer = await status(POLL_WAIT);
          settle(answer);
        } catch (error) {
          if (done) return;
          if (error?.code === "network_error" || (error?.status ?? 0) >= 500) {
            await new Promise((wake) => win.setTimeout(wake, 1000));
            continue;
          }
          finish(reject, error);
        }
      }
    }
    async function onTick() {
      if (done || !popup.closed) return;
      win.clearInterval(timer);
      if (flowId) {
        try {
          settle(await status(CLOSED_GRACE));
        } catch {
          /* fall through: cancelled */
        }
      }
      finish(reject, new ConnectError("cancelled", "the window was closed before the connection finished", { flowId }));
    }
    win.addEventListener("message", onMessage);
    poll();
  });
}

function openPopup(win, url) {
  try {
    // A fresh name each time: reusing a named window whose opener was severed would be a navigation it refuses.
    return win.open(url, `broker-connect-${Date.now()}`, POPUP_FEATURES);
  } catch {
    return null;
  }
}

async function redirect(options, win) {
  const started = await call(options, "POST", "/oauth/start", startBody(options, "redirect"));
  win.location.assign(started.authorization_url);
  return new Promise(() => {}); // the page is leaving; readRedirectResult() reads the outcome on the return URL
}

/**
 * Connect a provider account. Call it from a click handler: the popup is opened before anything is awaited.
 * Resolves `{integrationId, status: "connected", flowId}`; rejects with a ConnectError.
 */
export function connect(options) {
  const win = options.window ?? globalThis.window;
  if (!options.provider) return Promise.reject(new ConnectError("configuration", "pass `provider`"));
  if ((options.mode ?? "popup") === "redirect") return redirect(options, win);
  const popup = openPopup(win, "about:blank");
  if (!popup) {
    if (options.fallback === "redirect") return redirect(options, win);
    return Promise.reject(new ConnectError("popup_blocked", "the browser blocked the popup: call connect() from a click"));
  }
  return (async () => {
    let started;
    try {
      started = await call(options, "POST", "/oauth/start", startBody(options, "popup"));
    } catch (error) {
      popup.close();
      throw error;
    }
    popup.location.href = started.authorization_url;
    return follow(options, win, popup, started.flow_id);
  })();
}

/**
 * Open the hosted Connect page of a connect session (the entity picks a provider there). Resolves like connect()
 * when an account gets connected; rejects `cancelled` when the window is closed first.
 */
export function openConnectPage(session, options = {}) {
  const win = options.window ?? globalThis.window;
  const url = `${brokerBase(options)}/connect?session=${encodeURIComponent(session)}`;
  if (options.mode === "redirect") {
    win.location.assign(url);
    return new Promise(() => {});
  }
  const popup = openPopup(win, url);
  if (!popup) return Promise.reject(new ConnectError("popup_blocked", "the browser blocked the popup"));
  return follow({ ...options, session }, win, popup, undefined, true);
}

/** The entity's integrations (the broker's GET /integrations: one page of up to `pageSize`). */
export async function listIntegrations(options) {
  const size = options.pageSize ?? 100;
  const answer = await call(options, "GET", `/integrations?page_size=${size}`);
  return answer.integrations;
}

/** Disconnect (revoke at the provider and delete) one of the entity's integrations. */
export async function disconnect(integrationId, options) {
  return call(options, "DELETE", `/integrations/${encodeURIComponent(integrationId)}`);
}

/** On the return URL of a redirect-mode connect: the outcome the broker put in the query string. */
export function readRedirectResult(url = globalThis.location?.href) {
  const params = new URL(url).searchParams;
  if (params.get("status") === "connected") {
    return { integrationId: params.get("integration_id"), status: "connected" };
  }
  if (params.has("error")) {
    throw failure({ status: "failed", error: params.get("error"), error_description: params.get("error_description") });
  }
  return null;
}
