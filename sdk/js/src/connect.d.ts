/** Integrations broker: the Connect SDK (ES module, no dependencies). */

/** How the SDK authenticates: a connect session from your backend, or your user's ID token. */
export type Auth = { session: string; getIdToken?: never } | { getIdToken: () => string | Promise<string>; session?: never };

export interface BrokerOptions {
  /** The broker's URL; defaults to the origin /connect.js was loaded from. Required when bundled. */
  broker?: string;
  /** For tests: the window and fetch to use. */
  window?: Window;
  fetch?: typeof fetch;
}

export type ConnectOptions = BrokerOptions &
  Auth & {
    /** A catalog provider id or alias (`google`, `github`, `demo`, …). */
    provider: string;
    /** Scopes added to the catalog's defaults. */
    scopes?: string[];
    /** Reconnect this integration in place (same id). */
    integrationId?: string;
    label?: string;
    /** `popup` (default) resolves in this page; `redirect` leaves it (mobile, popup blockers). */
    mode?: "popup" | "redirect";
    /** With `redirect`: one of the broker's ALLOWED_RETURN_URLS. */
    returnTo?: string;
    /** What to do when the browser blocks the popup: reject `popup_blocked` (default) or redirect. */
    fallback?: "error" | "redirect";
  };

export interface ConnectResult {
  integrationId: string;
  status: "connected";
  flowId?: string;
}

export type ConnectErrorCode =
  | "cancelled"
  | "denied"
  | "expired"
  | "provider_error"
  | "temporarily_unavailable"
  | "server_error"
  | "popup_blocked"
  | "network_error"
  | "unauthenticated"
  | "configuration"
  | (string & {});

export class ConnectError extends Error {
  readonly name: "ConnectError";
  readonly code: ConnectErrorCode;
  /** The HTTP status, when the broker refused a call. */
  readonly status?: number;
  readonly flowId?: string;
  /** The provider's or broker's own error code, as the result carried it. */
  readonly providerError?: string;
  constructor(code: ConnectErrorCode, message: string, details?: Record<string, unknown>);
}

export interface Integration {
  id: string;
  provider: string;
  credential_type: "oauth2" | "api_key" | "basic";
  status: string;
  label: string | null;
  account: { subject: string | null; email: string | null; login: string | null };
  scopes: string[];
  refreshable: boolean;
  [field: string]: unknown;
}

export function connect(options: ConnectOptions): Promise<ConnectResult>;
export function openConnectPage(session: string, options?: BrokerOptions & { mode?: "popup" | "redirect" }): Promise<ConnectResult>;
export function listIntegrations(options: BrokerOptions & Auth & { pageSize?: number }): Promise<Integration[]>;
export function disconnect(integrationId: string, options: BrokerOptions & Auth): Promise<unknown>;
export function readRedirectResult(url?: string): ConnectResult | null;
