# One public origin for the browser-facing functions: a global external Application Load Balancer with a
# Google-managed certificate, routing by path to serverless NEGs. Same origin as the broker's cookie needs
# (see the README's "What browser binding requires of a deployment"). Point the domain's A record at the
# address in the `load_balancer_ip` output; the certificate becomes active once DNS resolves to it.

locals {
  public_functions = { for fn, f in local.functions : fn => f if f.public }
}

resource "google_compute_global_address" "lb" {
  name       = "${var.name}-lb"
  depends_on = [google_project_service.enabled]
}

resource "google_compute_managed_ssl_certificate" "lb" {
  name = "${var.name}-cert"
  managed {
    domains = [var.domain]
  }
  depends_on = [google_project_service.enabled]
}

resource "google_compute_region_network_endpoint_group" "function" {
  for_each = local.public_functions

  name                  = "${local.service_name[each.key]}-neg"
  region                = var.region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.function[each.key].name
  }
}

resource "google_compute_backend_service" "function" {
  for_each = local.public_functions

  name                  = "${local.service_name[each.key]}-backend"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = google_compute_security_policy.edge.id

  backend {
    group = google_compute_region_network_endpoint_group.function[each.key].id
  }

  # Request logs hold the URL with its query: the callback's single-use code and spent state (README, "Logs").
  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

resource "google_compute_url_map" "https" {
  name = "${var.name}-https"
  # Paths that are not the broker's reach the integrations function, which answers them with a 404.
  default_service = google_compute_backend_service.function["integrations"].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "broker"
  }

  path_matcher {
    name            = "broker"
    default_service = google_compute_backend_service.function["integrations"].id

    path_rule {
      # The Connect experience rides on oauth_start: the hosted page and its assets, the SDK, sessions, flow status.
      paths   = ["/oauth/start", "/connect", "/connect/*", "/connect.js"]
      service = google_compute_backend_service.function["oauth_start"].id
    }
    path_rule {
      paths   = ["/oauth/callback"]
      service = google_compute_backend_service.function["oauth_callback"].id
    }
    path_rule {
      paths   = ["/integrations", "/integrations/*", "/providers"]
      service = google_compute_backend_service.function["integrations"].id
    }
  }
}

resource "google_compute_ssl_policy" "modern" {
  name            = "${var.name}-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
  depends_on      = [google_project_service.enabled]
}

resource "google_compute_target_https_proxy" "https" {
  name             = "${var.name}-https"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.lb.id]
  ssl_policy       = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.lb.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.https.id
}

# Plain http only redirects to https.
resource "google_compute_url_map" "http_redirect" {
  name = "${var.name}-http-redirect"
  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
  depends_on = [google_project_service.enabled]
}

resource "google_compute_target_http_proxy" "http_redirect" {
  name    = "${var.name}-http-redirect"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http_redirect" {
  name                  = "${var.name}-http-redirect"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.lb.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.http_redirect.id
}

# Cloud Armor at the edge: Google's preconfigured rules against Log4j-style remote code execution, plus a
# per-client rate limit. Everything else is allowed (the functions authenticate their callers).
resource "google_compute_security_policy" "edge" {
  name        = "${var.name}-edge"
  description = "Integrations broker edge policy"
  depends_on  = [google_project_service.enabled]

  rule {
    action   = "deny(403)"
    priority = 1000
    match {
      expr {
        expression = "evaluatePreconfiguredExpr('cve-canary')"
      }
    }
    description = "Log4j (CVE-2021-44228, CVE-2021-45046)"
  }

  rule {
    action   = "throttle"
    priority = 2000
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    rate_limit_options {
      conform_action = "allow"
      exceed_action  = "deny(429)"
      enforce_on_key = "IP"
      rate_limit_threshold {
        count        = 300
        interval_sec = 60
      }
    }
    description = "At most 300 requests a minute per client address"
  }

  rule {
    action   = "allow"
    priority = 2147483647
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
    description = "Default: allow"
  }
}
