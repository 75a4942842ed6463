# The refresh job: Cloud Scheduler POSTs /refresh to token_refresh every few minutes with an OIDC token of its own
# service account (Cloud Run checks roles/run.invoker, the function checks the account and the audience again).
# `broker scheduler status|run|pause|resume` operates it (README, "Deploy").

resource "google_cloud_scheduler_job" "refresh" {
  name             = "${var.name}-refresh"
  region           = var.region
  description      = "Refresh the access tokens that expire soon (integrations broker)."
  schedule         = var.refresh_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "320s" # the function's 300 s timeout, plus a margin

  retry_config {
    # A failed run is retried with backoff; the next scheduled run follows a few minutes later anyway.
    retry_count          = 3
    min_backoff_duration = "15s"
    max_backoff_duration = "120s"
    max_doublings        = 3
    max_retry_duration   = "600s"
  }

  http_target {
    http_method = "POST"
    # With the fan-out (tasks.tf) the run enqueues shards on the providers' queues instead of refreshing itself.
    uri = "${google_cloud_run_v2_service.function["token_refresh"].uri}${var.refresh_fanout ? "/refresh/dispatch" : "/refresh"}"
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
