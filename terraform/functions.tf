# The five functions: Cloud Run services from one image, one service account each, settings from shared/config.py.
# terraform creates them; CI owns the image (cloudbuild.yaml deploys each commit's image), so image changes made
# by CI are ignored here.

locals {
  provider_env_prefix = { for id in keys(var.oauth_providers) : id => upper(replace(id, "-", "_")) }

  # The settings every function and the migration job read, named as in shared/config.py (tests/infra checks
  # each name against Settings). Empty values are left out rather than set to "".
  settings = {
    ENVIRONMENT               = "production"
    LOG_LEVEL                 = var.log_level
    INSTANCE_CONNECTION_NAME  = google_sql_database_instance.this.connection_name
    DB_NAME                   = google_sql_database.broker.name
    DB_PRIVATE_IP             = "true"
    SECRET_BACKEND            = var.secret_backend
    GCP_PROJECT               = var.project_id
    SECRET_PREFIX             = var.secret_prefix
    DATA_KEY_SECRET           = "${google_secret_manager_secret.config["data-key"].id}/versions/${var.data_key_version}"
    PUBLIC_BASE_URL           = local.public_base_url
    ALLOWED_RETURN_URLS       = join(",", var.allowed_return_urls)
    ALLOWED_ORIGINS           = join(",", var.allowed_origins)
    AUTH_MODE                 = "oidc"
    AUTH_ISSUER               = var.auth_issuer
    AUTH_AUDIENCE             = join(",", var.auth_audience)
    AUTH_ENTITY_CLAIM         = var.auth_entity_claim
    AUTH_JWKS_URL             = var.auth_jwks_url == null ? "" : var.auth_jwks_url
    TOKEN_INVOKERS            = join(",", var.token_fetch_invokers)
    TOKEN_AUDIENCE            = local.run_url["token_fetch"]
    SCHEDULER_SERVICE_ACCOUNT = google_service_account.scheduler.email
    REFRESH_AUDIENCE          = local.run_url["token_refresh"]
    PUBSUB_TOPIC              = local.events_topic
    EVENTS_RETRY_HOURS        = tostring(var.events_retry_hours)
  }
  settings_env = { for name, value in local.settings : name => value if value != "" }

  # Settings that differ by function: the database pool (sized with the instance count to fit max_connections,
  # sql.tf), the network check, on token_fetch only (Cloud Scheduler, which calls token_refresh, is not in the
  # VPC), and WEBHOOK_URLS on token_refresh only, the one function that dispatches events (events.tf).
  function_settings = {
    for fn in keys(local.functions) : fn => merge(
      {
        DB_POOL_SIZE    = tostring(local.scaling[fn].db_pool_size)
        DB_MAX_OVERFLOW = tostring(var.db_max_overflow)
      },
      { for name, value in { ALLOWED_CIDRS = join(",", var.token_allowed_cidrs) } : name => value if fn == "token_fetch" && value != "" },
      { for name, value in local.events_env : name => value if fn == "token_refresh" },
      { for name, value in local.fanout_env : name => value if fn == "token_refresh" },
    )
  }

  # <PROVIDER>_CLIENT_ID for every function; <PROVIDER>_CLIENT_SECRET from Secret Manager for those that
  # exchange or refresh tokens.
  client_id_env = { for id, p in var.oauth_providers : "${local.provider_env_prefix[id]}_CLIENT_ID" => p.client_id }
  client_secret_env = {
    for id, p in var.oauth_providers : "${local.provider_env_prefix[id]}_CLIENT_SECRET" => {
      secret  = google_secret_manager_secret.config["client-secret-${id}"].secret_id
      version = p.client_secret_version
    }
  }
  # The internal callers' API keys: token_fetch's, and oauth_start's for POST /connect/sessions (the product's
  # backend mints connect sessions with the same keys).
  internal_api_keys_env = {
    INTERNAL_API_KEYS = {
      secret  = google_secret_manager_secret.config["internal-api-keys"].secret_id
      version = var.internal_api_keys_version
    }
  }
  function_secret_env = {
    for fn, f in local.functions : fn => merge(
      { for name, ref in local.client_secret_env : name => ref if f.client_secrets },
      { for name, ref in local.internal_api_keys_env : name => ref if contains(["token_fetch", "oauth_start"], fn) },
      { for name, ref in local.events_secret_env : name => ref if fn == "token_refresh" },
    )
  }
}

resource "google_cloud_run_v2_service" "function" {
  for_each = local.functions

  name                = local.service_name[each.key]
  location            = var.region
  description         = "Integrations broker: the ${each.key} function (${each.value.source})."
  deletion_protection = var.deletion_protection

  # Public functions take traffic only through the load balancer (which authenticates nobody: the functions check
  # the caller's ID token themselves), so Cloud Run's invoker check is off for them. Internal functions keep it:
  # token_fetch is invokable by the named backends, token_refresh by the scheduler (iam.tf).
  ingress              = each.value.ingress # token_fetch: var.token_fetch_ingress (main.tf)
  invoker_iam_disabled = each.value.public
  custom_audiences     = each.value.public ? [] : [local.run_url[each.key]]

  template {
    service_account                  = google_service_account.function[each.key].email
    timeout                          = each.value.timeout
    max_instance_request_concurrency = var.max_request_concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = local.scaling[each.key].max_instances
    }

    vpc_access {
      network_interfaces {
        network    = google_compute_network.this.id
        subnetwork = google_compute_subnetwork.run.id
      }
      egress = "PRIVATE_RANGES_ONLY"
    }

    containers {
      image = var.image

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      # /health touches nothing (no database, no secret store): a dependency outage never restarts instances.
      # Start-up (imports, settings) takes a few seconds on a cold instance: up to 10 × 3 s are allowed.
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 3
        timeout_seconds       = 2
        failure_threshold     = 10
        http_get {
          path = "/health"
        }
      }
      liveness_probe {
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
        http_get {
          path = "/health"
        }
      }

      env {
        name  = "FUNCTION_TARGET"
        value = each.key
      }
      env {
        name  = "FUNCTION_SOURCE"
        value = each.value.source
      }
      env {
        name  = "DB_USER"
        value = local.db_user[each.key]
      }

      dynamic "env" {
        for_each = local.settings_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.function_settings[each.key]
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.client_id_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.function_secret_env[each.key]
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image, # CI owns the image tag
      client,
      client_version,
    ]
  }

  depends_on = [
    google_project_iam_member.database,
    google_secret_manager_secret_iam_member.config,
    google_sql_user.function,
    terraform_data.secret_versions, # a revision never starts without the secret versions it reads (secrets.tf)
  ]
}
