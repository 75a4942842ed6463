# Metrics and alerts without an agent: log-based metrics read the functions' structured JSON logs (fields set with
# shared.logs.fields; tests/infra/test_logs.py proves each one is logged) and Cloud Run's request logs; alert
# policies notify var.alert_notification_channels; one dashboard shows them with Cloud Run's own request metrics.

locals {
  metric_prefix = "${replace(var.name, "-", "_")}_"
  # Log entries of the deployment's functions only.
  function_logs = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${var.name}-\""
  metric_type   = "logging.googleapis.com/user/"
}

resource "google_logging_metric" "refresh_outcomes" {
  name        = "${local.metric_prefix}refresh_outcomes"
  description = "Refreshes by provider, outcome (refreshed, failed) and failure class (none, transient, refused, permanent)."
  filter      = "${local.function_logs} AND jsonPayload.event=\"refresh\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "provider"
      value_type = "STRING"
    }
    labels {
      key        = "outcome"
      value_type = "STRING"
    }
    labels {
      key        = "failure_class"
      value_type = "STRING"
    }
  }
  label_extractors = {
    provider      = "EXTRACT(jsonPayload.provider)"
    outcome       = "EXTRACT(jsonPayload.outcome)"
    failure_class = "EXTRACT(jsonPayload.failure_class)"
  }
  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "reauth_required" {
  name        = "${local.metric_prefix}reauth_required"
  description = "Integrations moved to reauth_required (the provider refused the grant for good), by provider."
  filter      = "${local.function_logs} AND jsonPayload.event=\"reauth_required\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "provider"
      value_type = "STRING"
    }
  }
  label_extractors = {
    provider = "EXTRACT(jsonPayload.provider)"
  }
  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "secret_manager_calls" {
  name        = "${local.metric_prefix}secret_manager_calls"
  description = "Secret Manager calls by method and status (RESOURCE_EXHAUSTED: a quota refused it)."
  filter      = "${local.function_logs} AND jsonPayload.event=\"secret_manager_call\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "method"
      value_type = "STRING"
    }
    labels {
      key        = "status"
      value_type = "STRING"
    }
  }
  label_extractors = {
    method = "EXTRACT(jsonPayload.method)"
    status = "EXTRACT(jsonPayload.status)"
  }
  depends_on = [google_project_service.enabled]
}

# token_fetch's answers by HTTP status, from Cloud Run's request log (its latency is Cloud Run's own
# run.googleapis.com/request_latencies, on the dashboard).
resource "google_logging_metric" "token_fetch_responses" {
  name        = "${local.metric_prefix}token_fetch_responses"
  description = "token_fetch answers by HTTP status (Cloud Run request log)."
  filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.service_name["token_fetch"]}\" AND log_id(\"run.googleapis.com/requests\")"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key        = "status"
      value_type = "STRING"
    }
  }
  label_extractors = {
    status = "EXTRACT(httpRequest.status)"
  }
  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "refresh_runs" {
  name        = "${local.metric_prefix}refresh_runs"
  description = "Finished refresh job runs (the stalled-job alert watches for their absence)."
  filter      = "${local.function_logs} AND jsonPayload.event=\"refresh_run\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
  depends_on = [google_project_service.enabled]
}

# --- Alerts --------------------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "refresh_failure_rate" {
  display_name          = "${var.name}: refresh failure rate above ${var.alert_refresh_failure_ratio * 100}%"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  documentation {
    content   = "More than ${var.alert_refresh_failure_ratio * 100}% of token refreshes failed over 30 minutes. Logs: jsonPayload.event=\"refresh\" AND jsonPayload.outcome=\"failed\" (the error and provider are in each line)."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "failed / all refreshes"
    condition_threshold {
      filter             = "metric.type=\"${local.metric_type}${google_logging_metric.refresh_outcomes.name}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=\"failed\""
      denominator_filter = "metric.type=\"${local.metric_type}${google_logging_metric.refresh_outcomes.name}\" AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_refresh_failure_ratio
      duration           = "0s"
      aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "reauth_required_rise" {
  display_name          = "${var.name}: more than ${var.alert_reauth_required_per_hour} integrations need reauthorisation in an hour"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  documentation {
    content   = "Providers refused grants for good (users must connect again). By provider: the reauth_required metric; logs: jsonPayload.event=\"reauth_required\". A rise for one provider often means a revoked or rotated client secret."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "reauth_required transitions per hour"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}${google_logging_metric.reauth_required.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_reauth_required_per_hour
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "secret_manager_quota" {
  display_name          = "${var.name}: Secret Manager quota refusals"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  documentation {
    content   = "Secret Manager answered RESOURCE_EXHAUSTED (600 writes a minute per project). Rotated tokens stay pending in their rows and the refresh job moves them later; persistent refusals mean a quota increase or the database backend."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "RESOURCE_EXHAUSTED answers"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}${google_logging_metric.secret_manager_calls.name}\" AND resource.type=\"cloud_run_revision\" AND metric.label.status=\"RESOURCE_EXHAUSTED\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "refresh_stalled" {
  display_name          = "${var.name}: the refresh job has not finished a run for 30 minutes"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  documentation {
    content   = "No refresh job run finished for 30 minutes (schedule: ${var.refresh_schedule}). `broker scheduler status --job <refresh_job output>` shows the last attempt; the token_refresh logs say why."
    mime_type = "text/markdown"
  }
  conditions {
    display_name = "no finished refresh run"
    condition_absent {
      filter   = "metric.type=\"${local.metric_type}${google_logging_metric.refresh_runs.name}\" AND resource.type=\"cloud_run_revision\""
      duration = "1800s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_dashboard" "broker" {
  dashboard_json = templatefile("${path.module}/dashboard.json", {
    name                  = var.name
    refresh_outcomes      = "${local.metric_type}${google_logging_metric.refresh_outcomes.name}"
    reauth_required       = "${local.metric_type}${google_logging_metric.reauth_required.name}"
    secret_manager_calls  = "${local.metric_type}${google_logging_metric.secret_manager_calls.name}"
    token_fetch_responses = "${local.metric_type}${google_logging_metric.token_fetch_responses.name}"
    refresh_runs          = "${local.metric_type}${google_logging_metric.refresh_runs.name}"
    token_fetch_service   = local.service_name["token_fetch"]
  })
  depends_on = [google_project_service.enabled]
}
