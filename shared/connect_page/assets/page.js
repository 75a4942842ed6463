// The hosted Connect page: start a provider's flow in this window, store static credentials, disconnect.
// Every call carries the connect session (the page's ?session=) as its bearer token; nothing else is sent.
const config = JSON.parse(document.getElementById("connect-config").textContent);
const session = new URLSearchParams(location.search).get("session") || "";
const status = document.getElementById("status");
const SESSION_KEY = "broker.connect.session"; // the result page's way back here (this tab only)

const WORDS = {
  provider_not_configured: "This service is not set up here yet.",
  session_expired: "This link has expired. Go back to the application and open it again.",
  invalid_session: "This link is not valid. Go back to the application and open it again.",
  session_not_permitted: "This link does not allow that.",
  validation_failed: "Some of the values are not in the expected form.",
  invalid_credentials: "Those credentials were not accepted.",
  temporarily_unavailable: "The service cannot be reached right now. Please try again in a moment.",
};

function say(text, tone = "") {
  status.textContent = text;
  status.className = `card notice ${tone}`;
  status.hidden = false;
  status.focus?.();
}

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${session}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(config.base + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = answer?.error?.code || "error";
    throw Object.assign(new Error(WORDS[code] || answer?.error?.message || "Something went wrong."), { code });
  }
  return answer;
}

function tell(message) {
  // The application's page that opened this one hears about it (exact origin only), e.g. to follow the flow.
  if (window.opener && config.origin) {
    try { window.opener.postMessage(message, config.origin); } catch { /* the opener went away */ }
  }
}

async function start(provider, integrationId) {
  say("Opening the sign-in page…");
  const body = { provider, mode: "popup" };
  if (integrationId) body.integration_id = integrationId;
  try {
    const started = await call("POST", "/oauth/start", body);
    tell({ type: "broker:flow", flow_id: started.flow_id });
    sessionStorage.setItem(SESSION_KEY, session);
    location.assign(started.authorization_url);
  } catch (error) {
    say(error.message, "error");
  }
}

function showForm(provider) {
  for (const form of document.querySelectorAll("form[data-credentials]")) {
    form.hidden = form.dataset.credentials !== provider;
  }
  document.querySelector(`form[data-credentials="${CSS.escape(provider)}"] input`)?.focus();
}

document.addEventListener("click", async (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.dataset.reconnect) return start(target.dataset.provider, target.dataset.reconnect);
  if (target.dataset.disconnect) {
    if (target.dataset.confirming !== "yes") {
      target.dataset.confirming = "yes";
      target.textContent = "Confirm disconnect";
      return;
    }
    target.disabled = true;
    try {
      await call("DELETE", `/integrations/${encodeURIComponent(target.dataset.disconnect)}`);
      tell({ type: "broker:disconnected", integration_id: target.dataset.disconnect });
      location.reload();
    } catch (error) {
      target.disabled = false;
      say(error.message, "error");
    }
    return;
  }
  if (target.hasAttribute("data-cancel")) {
    target.closest("form").hidden = true;
    return;
  }
  if (target.dataset.provider) {
    if (target.dataset.authMode === "oauth2") return start(target.dataset.provider);
    showForm(target.dataset.provider);
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-credentials]");
  if (!form) return;
  event.preventDefault();
  if (!form.reportValidity()) return;
  const credentials = {};
  for (const input of form.querySelectorAll("input[name]")) {
    if (input.value !== "") credentials[input.name] = input.value;
  }
  try {
    const created = await call("POST", "/integrations", { provider: form.dataset.credentials, credentials });
    tell({ type: "broker:connect", flow_id: null, status: "connected", integration_id: created.id });
    location.reload();
  } catch (error) {
    say(error.message, "error");
  }
});

// A credentials_schema pattern this browser cannot compile (HTML patterns use the `v` flag) would silently turn
// the check off; the broker checks the values again anyway, so drop it rather than mislead.
for (const input of document.querySelectorAll("input[pattern]")) {
  try { new RegExp(input.pattern, "v"); } catch { input.removeAttribute("pattern"); }
}
