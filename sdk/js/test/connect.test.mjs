// The SDK's own tests (node --test): a fake window and fetch stand in for the browser; the real browser runs are
// tests/browser (Chromium). Run: `node --test sdk/js/test/` (pytest runs it: tests/sdk/test_js_sdk.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ConnectError, connect, listIntegrations, openConnectPage, readRedirectResult } from "../src/connect.js";

const BROKER = "https://broker.example";

function fakeWindow({ blocked = false } = {}) {
  const listeners = new Set();
  const win = {
    opened: [],
    popup: null,
    location: { assigned: null, assign(url) { this.assigned = url; } },
    open(url, name, features) {
      if (blocked) return null;
      this.popup = { url, name, features, closed: false, location: { href: url }, close() { this.closed = true; } };
      this.opened.push(this.popup);
      return this.popup;
    },
    addEventListener(type, listener) { if (type === "message") listeners.add(listener); },
    removeEventListener(type, listener) { listeners.delete(listener); },
    post(origin, data) { for (const listener of [...listeners]) listener({ origin, data }); },
    listeners,
    setInterval: (fn, ms) => setInterval(fn, ms),
    clearInterval: (id) => clearInterval(id),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
  };
  return win;
}

// Answers by path; `flows` is the status the flow endpoint reports (held `hold` ms while pending).
function fakeFetch({ flows = () => ({ status: "pending" }), hold = 20, start = {} } = {}) {
  const calls = [];
  const fetcher = async (url, init) => {
    calls.push({ url, init });
    const path = new URL(url).pathname;
    const reply = (status, body) => ({ ok: status < 400, status, json: async () => body });
    if (path === "/oauth/start") {
      return reply(200, { authorization_url: "https://provider.example/auth?x=1", flow_id: "flow-1", ...start });
    }
    if (path.startsWith("/connect/flows/")) {
      await new Promise((wake, fail) => {
        const timer = setTimeout(wake, hold);
        init.signal?.addEventListener("abort", () => { clearTimeout(timer); fail(Object.assign(new Error("aborted"), { name: "AbortError" })); });
      });
      return reply(200, flows());
    }
    if (path === "/integrations") return reply(200, { integrations: [{ id: "i-1" }] });
    return reply(404, { error: { code: "not_found", message: "no" } });
  };
  fetcher.calls = calls;
  return fetcher;
}

test("connect opens the popup at once, starts the flow with the session and resolves on the result message", async () => {
  const win = fakeWindow();
  const fetcher = fakeFetch();
  const promise = connect({ broker: BROKER, session: "cs_x", provider: "demo", window: win, fetch: fetcher });
  assert.equal(win.opened.length, 1, "opened synchronously, inside the click");
  assert.equal(win.popup.url, "about:blank");
  await new Promise((wake) => setTimeout(wake, 10));
  assert.equal(win.popup.location.href, "https://provider.example/auth?x=1");
  const start = fetcher.calls[0];
  assert.equal(start.init.headers.Authorization, "Bearer cs_x");
  assert.equal(start.init.credentials, "omit");
  assert.deepEqual(JSON.parse(start.init.body), { provider: "demo", mode: "popup" });
  win.post("https://evil.example", { type: "broker:connect", flow_id: "flow-1", status: "connected", integration_id: "evil" });
  win.post(BROKER, { type: "broker:connect", flow_id: "flow-2", status: "connected", integration_id: "other-flow" });
  win.post(BROKER, { type: "broker:connect", flow_id: "flow-1", status: "connected", integration_id: "i-1" });
  assert.deepEqual(await promise, { integrationId: "i-1", status: "connected", flowId: "flow-1" });
  assert.equal(win.popup.closed, true);
  assert.equal(win.listeners.size, 0, "its listener is removed");
});

test("the status endpoint settles it when no message comes (a severed opener)", async () => {
  let answers = 0;
  const fetcher = fakeFetch({ flows: () => (++answers < 2 ? { status: "pending" } : { status: "connected", integration_id: "i-2" }) });
  const result = await connect({ broker: BROKER, session: "cs_x", provider: "demo", window: fakeWindow(), fetch: fetcher });
  assert.equal(result.integrationId, "i-2");
  assert.ok(fetcher.calls.some((c) => c.url.endsWith("/connect/flows/flow-1?wait=10")));
});

test("errors are typed: denied, expired, a refused start, a blocked popup, cancelled", async () => {
  const denied = connect({ broker: BROKER, session: "cs_x", provider: "demo", window: fakeWindow(),
    fetch: fakeFetch({ flows: () => ({ status: "failed", error: "access_denied" }) }) });
  await assert.rejects(denied, (e) => e instanceof ConnectError && e.code === "denied" && e.providerError === "access_denied");
  const expired = connect({ broker: BROKER, session: "cs_x", provider: "demo", window: fakeWindow(),
    fetch: fakeFetch({ flows: () => ({ status: "expired" }) }) });
  await assert.rejects(expired, { code: "expired" });
  const refusing = async () => ({ ok: false, status: 401, json: async () => ({ error: { code: "session_expired", message: "m" } }) });
  const win = fakeWindow();
  await assert.rejects(connect({ broker: BROKER, session: "cs_x", provider: "demo", window: win, fetch: refusing }),
    { code: "session_expired", status: 401 });
  assert.equal(win.popup.closed, true, "the blank popup is closed again");
  await assert.rejects(connect({ broker: BROKER, session: "cs_x", provider: "demo", window: fakeWindow({ blocked: true }) }),
    { code: "popup_blocked" });
  const closing = fakeWindow();
  const cancelled = connect({ broker: BROKER, session: "cs_x", provider: "demo", window: closing, fetch: fakeFetch({ hold: 50 }) });
  await new Promise((wake) => setTimeout(wake, 20));
  closing.popup.closed = true;
  const began = Date.now();
  await assert.rejects(cancelled, { code: "cancelled" });
  assert.ok(Date.now() - began < 3000);
});

test("a blocked popup can fall back to a redirect; redirect mode sends the return URL", async () => {
  const win = fakeWindow({ blocked: true });
  const fetcher = fakeFetch();
  connect({ broker: BROKER, getIdToken: async () => "id-token", provider: "demo", fallback: "redirect", returnTo: "https://app/x",
    window: win, fetch: fetcher });
  await new Promise((wake) => setTimeout(wake, 10));
  assert.equal(win.location.assigned, "https://provider.example/auth?x=1");
  const start = fetcher.calls[0];
  assert.equal(start.init.headers.Authorization, "Bearer id-token");
  assert.equal(start.init.credentials, "include", "an ID-token flow carries the browser-binding cookie");
  assert.deepEqual(JSON.parse(start.init.body), { provider: "demo", mode: "redirect", return_to: "https://app/x" });
});

test("openConnectPage follows the flow the page announces, and lists and reads redirect results", async () => {
  const win = fakeWindow();
  const fetcher = fakeFetch({ hold: 1000 });
  const promise = openConnectPage("cs_y", { broker: BROKER, window: win, fetch: fetcher });
  assert.equal(win.popup.url, `${BROKER}/connect?session=cs_y`);
  win.post(BROKER, { type: "broker:flow", flow_id: "flow-9" });
  win.post(BROKER, { type: "broker:connect", flow_id: "flow-9", status: "connected", integration_id: "i-9" });
  assert.deepEqual(await promise, { integrationId: "i-9", status: "connected", flowId: "flow-9" });
  assert.deepEqual(await listIntegrations({ broker: BROKER, session: "cs_y", fetch: fakeFetch() }), [{ id: "i-1" }]);
  assert.deepEqual(readRedirectResult("https://app/x?integration_id=i-3&status=connected"), { integrationId: "i-3", status: "connected" });
  assert.throws(() => readRedirectResult("https://app/x?error=access_denied"), { code: "denied" });
  assert.equal(readRedirectResult("https://app/x"), null);
});
