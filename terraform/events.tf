# Events (README, "Events"): the Pub/Sub topic events are published to, the secret the webhooks are signed with,
# and the events schedule — Cloud Scheduler POSTs /dispatch to token_refresh every minute with the scheduler's OIDC
# token, so the dispatcher delivers what is due within about a minute (token_refresh also dispatches after each
# refresh run). Only token_refresh dispatches: only its service account publishes and reads the webhook secrets.

variable "events_pubsub" {
  description = "Create the events topic (<name>-events) and publish every event to it (PUBSUB_TOPIC)."
  type        = bool
  default     = true
}

variable "webhook_urls" {
  description = "WEBHOOK_URLS: https endpoints that receive every event, signed with the <name>-webhook-secrets secret."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for url in var.webhook_urls : startswith(url, "https://")]) && length(var.webhook_urls) <= 10
    error_message = "webhook_urls: at most 10, each https://."
  }
}

variable "webhook_secrets_version" {
  description = "The version of the <name>-webhook-secrets secret (comma-separated whsec_… values) token_refresh reads."
  type        = string
  default     = "1"
}

variable "events_retry_hours" {
  description = "EVENTS_RETRY_HOURS: how long a delivery is retried before it is dead (1-168)."
  type        = number
  default     = 24
  validation {
    condition     = var.events_retry_hours >= 1 && var.events_retry_hours <= 168
    error_message = "events_retry_hours must be between 1 and 168."
  }
}

locals {
  events_topic = var.events_pubsub ? "projects/${var.project_id}/topics/${var.name}-events" : ""
  # token_refresh's own event settings (WEBHOOK_URLS needs WEBHOOK_SECRETS, which only token_refresh reads).
  events_env = length(var.webhook_urls) > 0 ? { WEBHOOK_URLS = join(",", var.webhook_urls) } : {}
  events_secret_env = length(var.webhook_urls) > 0 ? {
    WEBHOOK_SECRETS = {
      secret  = google_secret_manager_secret.webhook_secrets[0].secret_id
      version = var.webhook_secrets_version
    }
  } : {}
}

resource "google_pubsub_topic" "events" {
  #checkov:skip=CKV_GCP_83:Event payloads hold ids, statuses and reasons only (never a secret); Google-managed encryption at rest is enough and a KMS key would add a key ring to operate.
  count = var.events_pubsub ? 1 : 0

  name                       = "${var.name}-events"
  message_retention_duration = "604800s" # a week: a subscriber that was down can seek back
  depends_on                 = [google_project_service.enabled]
}

resource "google_pubsub_topic_iam_member" "events_publisher" {
  count = var.events_pubsub ? 1 : 0

  topic  = google_pubsub_topic.events[0].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.function["token_refresh"].email}"
}

resource "google_secret_manager_secret" "webhook_secrets" {
  count = length(var.webhook_urls) > 0 ? 1 : 0

  secret_id = "${var.name}-webhook-secrets"
  annotations = {
    purpose = "WEBHOOK_SECRETS for token_refresh: comma-separated whsec_<base64> secrets; every one signs each delivery."
  }
  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }
  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "webhook_secrets" {
  count = length(var.webhook_urls) > 0 ? 1 : 0

  secret_id = google_secret_manager_secret.webhook_secrets[0].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function["token_refresh"].email}"
}

resource "google_cloud_scheduler_job" "events" {
  name             = "${var.name}-events"
  region           = var.region
  description      = "Deliver due events from the outbox (integrations broker)."
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s" # a dispatch claims for 45 s; sends in flight finish within 13 s

  retry_config {
    retry_count = 0 # the next minute's run picks up whatever this one left
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.function["token_refresh"].uri}/dispatch"
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.run_url["token_refresh"]
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.token_refresh_invoker]
}
