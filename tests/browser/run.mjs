// The browser scenarios of tests/browser/test_connect_browser.py: Debian's Chromium driven by playwright-core (never
// a downloaded browser). Run by pytest with a JSON config; prints one JSON object {scenario: result} on stdout.
//   node tests/browser/run.mjs config.json
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const TIMEOUT = 20000;
mkdirSync(config.outDir, { recursive: true });

const userDataDir = mkdtempSync(path.join(os.tmpdir(), "broker-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: config.chromium, headless: true, args: FLAGS, viewport: { width: 1000, height: 800 },
});
context.setDefaultTimeout(TIMEOUT);
const consoleErrors = [];
let current = "";
context.on("page", (page) => page.on("console", (m) => m.type() === "error" && consoleErrors.push(`${current}: ${m.text()}`)));
const results = {};

async function shot(page, name) {
  try {
    await page.screenshot({ path: path.join(config.outDir, `${name}.png`), fullPage: true });
    return true;
  } catch {
    return false; // a popup that closed itself meanwhile
  }
}

async function productPage(origin = config.product) {
  const page = await context.newPage();
  await page.goto(`${origin}/product.html?broker=${encodeURIComponent(config.broker)}`);
  await page.waitForSelector("body[data-ready=yes]");
  return page;
}

async function mint(entity, extra = {}) {
  const answer = await fetch(`${config.broker}/connect/sessions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${config.apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ entity_id: entity, allowed_origin: config.product, ...extra }),
  });
  if (answer.status !== 201) throw new Error(`mint: ${answer.status} ${await answer.text()}`);
  return (await answer.json()).token;
}

// Click #go on the product page with `next` in place; return the popup it opened.
async function go(page, next) {
  await page.evaluate((value) => { window.__next = value; }, next);
  const popup = page.waitForEvent("popup");
  await page.click("#go");
  return popup;
}

async function settled(page, count = 1) {
  await page.waitForFunction((n) => window.__results.length >= n, count, { timeout: TIMEOUT });
  return page.evaluate(() => window.__results.at(-1));
}

async function approveDemo(popup, name) {
  await popup.waitForURL(/\/demo\/oauth\/authorize/);
  await popup.waitForSelector("button[value=approve]");
  if (name) await shot(popup, name);
  await popup.click("button[value=approve]");
}

async function connectPageIds(session) {
  const page = await context.newPage();
  await page.goto(`${config.broker}/connect?session=${session}`);
  const ids = await page.$$eval("[data-integration]", (items) => items.map((item) => item.dataset.integration));
  return { page, ids };
}

const scenarios = {
  async popup_demo() {
    const page = await productPage();
    const popup = await go(page, { options: { session: config.sessions.a, provider: "demo" } });
    await approveDemo(popup, "demo-consent-page");
    await popup.waitForURL(/\/oauth\/callback/).catch(() => {});
    await shot(popup, "result-page-popup");
    const result = await settled(page);
    await popup.waitForEvent("close", { timeout: 5000 }).catch(() => {});
    const messages = await page.evaluate(() => window.__messages);
    const { page: listing, ids } = await connectPageIds(config.sessions.a);
    await shot(listing, "connect-page-after-connect");
    await Promise.all([page.close(), listing.close()]);
    return { result, popupClosed: popup.isClosed(), messages, listed: ids };
  },

  async popup_oidc() {
    const page = await productPage();
    const popup = await go(page, { options: { session: config.sessions.a, provider: "oidc-test" } });
    const result = await settled(page);
    await popup.waitForEvent("close", { timeout: 5000 }).catch(() => {});
    const { page: listing, ids } = await connectPageIds(config.sessions.a);
    await Promise.all([page.close(), listing.close()]);
    return { result, popupClosed: popup.isClosed(), listed: ids };
  },

  async hosted_page_popup() {
    // openConnectPage: the product opens the hosted page; the user picks the demo provider there.
    const page = await productPage();
    const popup = await go(page, { page: true, session: config.sessions.a, options: {} });
    await popup.waitForSelector("button[data-provider=demo]");
    await shot(popup, "connect-page-in-popup");
    await popup.click("button[data-provider=demo]");
    await approveDemo(popup);
    const result = await settled(page);
    const messages = await page.evaluate(() => window.__messages.map((m) => m.data?.type));
    await page.close();
    return { result, messages };
  },

  async full_page() {
    // The redirect-style mode: the Connect page as a whole tab; the result page stays and leads back.
    const page = await context.newPage();
    await page.goto(`${config.broker}/connect?session=${config.sessions.a}`);
    await page.click("button[data-provider=demo]");
    await approveDemo(page);
    await page.waitForURL(/\/oauth\/callback/);
    await page.waitForSelector("#continue:not([hidden]) a");
    await shot(page, "result-page-full");
    const title = await page.textContent("h1");
    await page.click("#continue a");
    await page.waitForURL(/\/connect\?session=/);
    const ids = await page.$$eval("[data-integration]", (items) => items.map((item) => item.dataset.integration));
    await page.close();
    return { title, listed: ids };
  },

  async cancel() {
    const page = await productPage();
    const popup = await go(page, { options: { session: config.sessions.a, provider: "demo" } });
    await popup.waitForURL(/\/demo\/oauth\/authorize/);
    const closedAt = Date.now();
    await popup.close();
    const result = await settled(page);
    const afterClose = Date.now() - closedAt;
    await page.close();
    return { result, afterClose };
  },

  async severed_opener() {
    const page = await productPage();
    const popup = await go(page, { options: { session: config.sessions.a, provider: "demo" } });
    await popup.waitForURL(/\/demo\/oauth\/authorize/);
    await popup.evaluate(() => { window.opener = null; }); // as COOP or a provider's page would sever it
    await approveDemo(popup);
    const result = await settled(page);
    const messages = await page.evaluate(() => window.__messages);
    await page.close();
    return { result, messages };
  },

  async other_origin() {
    // A page on an origin the broker does not allow gets hold of a flow's authorization URL (started for entity a
    // with a session whose allowed origin is the product's) and opens it: the flow may finish, no message reaches it.
    const started = await (await fetch(`${config.broker}/oauth/start`, {
      method: "POST", headers: { Authorization: `Bearer ${config.sessions.a}`, "Content-Type": "application/json" },
      body: JSON.stringify({ provider: "demo", mode: "popup" }),
    })).json();
    const evil = await context.newPage();
    await evil.goto(`${config.evil}/evil.html`);
    await evil.waitForSelector("body[data-ready=yes]");
    await evil.evaluate((url) => { window.__url = url; }, started.authorization_url);
    const popupWaiting = evil.waitForEvent("popup");
    await evil.click("#go");
    const popup = await popupWaiting;
    await approveDemo(popup);
    await popup.waitForEvent("close", { timeout: 5000 }).catch(() => {});
    await evil.waitForTimeout(500);
    const messages = await evil.evaluate(() => window.__messages);
    // It cannot read the flow's status either (no CORS for its origin), even with the session token.
    const status = await evil.evaluate(async ([broker, flow, token]) => {
      try {
        const r = await fetch(`${broker}/connect/flows/${flow}`, { headers: { Authorization: `Bearer ${token}` } });
        return `read ${r.status}`;
      } catch (error) {
        return `blocked: ${error.name}`;
      }
    }, [config.broker, started.flow_id, config.sessions.a]);
    // Nor frame the Connect page (frame-ancestors is the session's origin); the product's origin can.
    const framed = async (page) => {
      await page.evaluate((url) => {
        const frame = document.createElement("iframe");
        frame.src = url;
        document.body.append(frame);
      }, `${config.broker}/connect?session=${config.sessions.a}`);
      await page.waitForTimeout(1500);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      if (!frame) return { url: "", heading: "" };
      const heading = await frame.evaluate(() => document.querySelector("h1")?.textContent ?? "").catch(() => "");
      return { url: frame.url(), heading: heading.trim() };
    };
    const evilFrame = await framed(evil);
    const product = await productPage();
    const productFrame = await framed(product);
    await Promise.all([evil.close(), product.close()]);
    return { messages, status, evilFrame, productFrame, flowId: started.flow_id };
  },

  async cross_entity() {
    const startedB = await (await fetch(`${config.broker}/oauth/start`, {
      method: "POST", headers: { Authorization: `Bearer ${config.sessions.b}`, "Content-Type": "application/json" },
      body: JSON.stringify({ provider: "demo", mode: "popup" }),
    })).json();
    const page = await productPage();
    const answers = await page.evaluate(async ([broker, flow, a, b]) => {
      const read = async (token) => (await fetch(`${broker}/connect/flows/${flow}`, {
        headers: { Authorization: `Bearer ${token}` } })).status;
      return { withA: await read(a), withB: await read(b) };
    }, [config.broker, startedB.flow_id, config.sessions.a, config.sessions.b]);
    const { page: listingB, ids } = await connectPageIds(config.sessions.b);
    await Promise.all([page.close(), listingB.close()]);
    return { ...answers, listedForB: ids };
  },

  async expired() {
    const page = await context.newPage();
    const answer = await page.goto(`${config.broker}/connect?session=${config.sessions.expired}`);
    await shot(page, "connect-page-expired");
    const text = await page.textContent("main");
    const result = { status: answer.status(), url: page.url(), text };
    await page.close();
    return result;
  },

  async reconnect() {
    const page = await productPage();
    const ids = await page.evaluate((t) => window.sdk.listIntegrations({ session: t }).then((l) => l.map((i) => [i.id, i.provider])),
      config.sessions.a);
    const [id] = ids.find(([, provider]) => provider === "demo");
    const popup = await go(page, { options: { session: config.sessions.a, provider: "demo", integrationId: id } });
    await approveDemo(popup);
    const result = await settled(page);
    await page.close();
    return { before: id, result };
  },

  async disconnect() {
    const { page, ids } = await connectPageIds(config.sessions.a);
    const target = ids[0];
    const button = page.locator(`button[data-disconnect="${target}"]`);
    await button.click();
    await shot(page, "connect-page-confirm-disconnect");
    await Promise.all([page.waitForNavigation(), button.click()]);
    const after = await page.$$eval("[data-integration]", (items) => items.map((item) => item.dataset.integration));
    await page.close();
    return { target, after };
  },

  async static_credentials() {
    const page = await context.newPage();
    await page.goto(`${config.broker}/connect?session=${config.sessions.a}`);
    await page.click("button[data-provider=openai]");
    await page.fill("form[data-credentials=openai] input[name=api_key]", "sk-browser-test-0123456789abcdef");
    await shot(page, "connect-page-static-form");
    await Promise.all([page.waitForNavigation(), page.click("form[data-credentials=openai] button[type=submit]")]);
    const providers = await page.$$eval("[data-integration] strong", (items) => items.map((item) => item.textContent));
    await page.close();
    return { providers };
  },

  async accessibility() {
    const found = {};
    for (const scheme of ["light", "dark"]) {
      for (const [name, url] of [
        ["connect", `${config.broker}/connect?session=${config.sessions.a}`],
        ["expired", `${config.broker}/connect?session=${config.sessions.expired}`],
      ]) {
        const page = await context.newPage();
        await page.emulateMedia({ colorScheme: scheme });
        await page.goto(url);
        if (name === "connect") await page.click("button[data-provider=openai]");
        await shot(page, `${name}-page-${scheme}`);
        await page.evaluate(`${AXE}\n;0`); // CDP evaluation: not subject to the page's CSP
        const violations = await page.evaluate(async () => {
          const run = await window.axe.run(document, { resultTypes: ["violations"] });
          return run.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
        });
        found[`${name}-${scheme}`] = violations;
        await page.close();
      }
    }
    // Keyboard: the first provider button is reachable with Tab and starts with Enter (focus is visible).
    const page = await context.newPage();
    await page.goto(`${config.broker}/connect?session=${config.sessions.a}`);
    let focused = "";
    for (let i = 0; i < 30 && !focused.startsWith("provider:"); i += 1) {
      await page.keyboard.press("Tab");
      focused = await page.evaluate(() => {
        const el = document.activeElement;
        return el?.dataset?.provider && !el.dataset.reconnect ? `provider:${el.dataset.provider}` : el?.tagName ?? "";
      });
    }
    await page.close();
    return { violations: found, keyboard: focused };
  },

  async consent_pattern() {
    const page = await context.newPage();
    const errorsBefore = consoleErrors.length;
    const started = await (await fetch(`${config.broker}/oauth/start`, {
      method: "POST", headers: { Authorization: `Bearer ${config.sessions.a}`, "Content-Type": "application/json" },
      body: JSON.stringify({ provider: "demo" }),
    })).json();
    await page.goto(started.authorization_url);
    await page.fill("input[name=login]", "alice bob!");
    const bad = await page.$eval("input[name=login]", (input) => input.validity.patternMismatch);
    await page.fill("input[name=login]", "alice.bob");
    const good = await page.$eval("input[name=login]", (input) => input.validity.valid);
    await shot(page, "demo-consent-page-styled");
    await page.close();
    return { patternMismatch: bad, validLogin: good, consoleErrors: consoleErrors.slice(errorsBefore) };
  },
};

const only = config.scenarios ?? Object.keys(scenarios);
for (const name of only) {
  const began = Date.now();
  current = name;
  try {
    results[name] = { ...(await scenarios[name]()), seconds: (Date.now() - began) / 1000 };
  } catch (error) {
    results[name] = { failed: String(error?.stack ?? error), seconds: (Date.now() - began) / 1000 };
  }
}
results.__consoleErrors = consoleErrors;
await context.close();
rmSync(userDataDir, { recursive: true, force: true });
process.stdout.write(JSON.stringify(results));
