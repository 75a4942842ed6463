# The refresh fan-out (README "Scaling past one instance"), when var.refresh_fanout is true: one Cloud Tasks queue
# per configured provider, rate-limited for that provider's token endpoint. The refresh schedule then posts
# /refresh/dispatch (scheduler.tf); token_refresh counts what is due per provider and enqueues one task per
# refresh_shard_size integrations; each task posts /refresh/shard to token_refresh with the scheduler's OIDC
# token, and Cloud Run scales token_refresh with the tasks. Provider P never sees more than
# max_concurrent_dispatches × REFRESH_CONCURRENCY calls at once, nor more than
# max_dispatches_per_second × refresh_shard_size a second.

locals {
  refresh_queues = var.refresh_fanout ? {
    for id in keys(var.oauth_providers) : id => merge(
      var.refresh_queue_defaults,
      { for limit, value in lookup(var.refresh_queue_limits, id, {}) : limit => value if value != null },
    )
  } : {}

  # token_refresh's fan-out settings (functions.tf), named as in shared/config.py.
  fanout_env = var.refresh_fanout ? {
    TASKS_LOCATION     = var.region
    TASKS_QUEUE_PREFIX = "${var.name}-refresh"
    REFRESH_SHARD_URL  = "${local.run_url["token_refresh"]}/refresh/shard"
    REFRESH_SHARD_SIZE = tostring(var.refresh_shard_size)
    REFRESH_MAX_SHARDS = tostring(var.refresh_max_shards)
  } : {}
}

resource "google_cloud_tasks_queue" "refresh" {
  for_each = local.refresh_queues

  name     = "${var.name}-refresh-${each.key}"
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  # A failed shard is tried again a little later; the next dispatch finds whatever is still due anyway.
  retry_config {
    max_attempts       = 3
    min_backoff        = "10s"
    max_backoff        = "60s"
    max_retry_duration = "600s"
  }

  stackdriver_logging_config {
    sampling_ratio = 0.1
  }

  depends_on = [google_project_service.enabled]
}

# Only token_refresh enqueues, and only on these queues.
resource "google_cloud_tasks_queue_iam_member" "refresh_enqueuer" {
  for_each = google_cloud_tasks_queue.refresh

  name     = each.value.name
  location = var.region
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.function["token_refresh"].email}"
}

# A task carries an OIDC token of the scheduler's account (already token_refresh's invoker, iam.tf): creating one
# needs actAs on that account, and on nothing else.
resource "google_service_account_iam_member" "refresh_acts_as_scheduler" {
  count = var.refresh_fanout ? 1 : 0

  service_account_id = google_service_account.scheduler.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.function["token_refresh"].email}"
}
