# What every other file shares: the project (its number for IAM conditions), the functions, their names and URLs.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # One Cloud Run service per file in functions/, all from one image: FUNCTION_TARGET names the function,
  # FUNCTION_SOURCE its file (functions-framework reads both). `public` functions sit behind the load balancer;
  # the others are reachable only from inside (token_fetch: named backends; token_refresh: the scheduler).
  # max_instances and db_pool_size are the defaults of var.max_instances and var.db_pool_size: together they must
  # fit the database's max_connections (sql.tf checks the sum). Each function serves 4 requests at once (gunicorn's
  # threads on one CPU), hence a pool of 4; token_refresh runs REFRESH_CONCURRENCY (8) refreshes at once.
  functions = {
    oauth_start = {
      source         = "functions/oauth_start.py"
      public         = true
      client_secrets = false # start only builds the authorization URL: it needs client ids, never secrets
      timeout        = "30s"
      ingress        = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
      max_instances  = 2
      db_pool_size   = 4
    }
    oauth_callback = {
      source         = "functions/oauth_callback.py"
      public         = true
      client_secrets = true
      timeout        = "60s"
      ingress        = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
      max_instances  = 2
      db_pool_size   = 4
    }
    integrations = {
      source         = "functions/integrations.py"
      public         = true
      client_secrets = true
      timeout        = "60s"
      ingress        = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
      max_instances  = 3
      db_pool_size   = 4
    }
    token_fetch = {
      source         = "functions/token_fetch.py"
      public         = false
      client_secrets = true
      timeout        = "60s"
      ingress        = local.token_fetch_ingress[var.token_fetch_ingress]
      max_instances  = 5
      db_pool_size   = 3 # twice: the hot path's raw pool (one prepared statement per fetch) and the engine's
    }
    token_refresh = {
      source         = "functions/token_refresh.py"
      public         = false
      client_secrets = true
      timeout        = "300s" # above REFRESH_DEADLINE (240 s): the job stops itself first
      ingress        = "INGRESS_TRAFFIC_INTERNAL_ONLY"
      max_instances  = 2
      db_pool_size   = 8
    }
  }

  # token_fetch's ingress (var.token_fetch_ingress): "internal" admits only this project's VPC (callers route all
  # their traffic through it, see network.tf), Shared VPC, a VPC-SC perimeter or an internal load balancer; "all"
  # admits the internet, leaving Cloud Run IAM (roles/run.invoker) and the function's API key or ID token check as
  # the gates. token_refresh is always internal: Cloud Scheduler reaches internal services.
  token_fetch_ingress = {
    internal = "INGRESS_TRAFFIC_INTERNAL_ONLY"
    all      = "INGRESS_TRAFFIC_ALL"
  }

  # Each function's instances and pool: the variables where set, else the defaults above.
  scaling = {
    for fn, f in local.functions : fn => {
      max_instances = lookup(var.max_instances, fn, f.max_instances)
      db_pool_size  = lookup(var.db_pool_size, fn, f.db_pool_size)
    }
  }

  service_name = { for fn in keys(local.functions) : fn => "${var.name}-${replace(fn, "_", "-")}" }

  # Cloud Run's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app): known before the service
  # exists, so a service's own settings can name it (TOKEN_AUDIENCE, REFRESH_AUDIENCE) without a cycle.
  run_url = { for fn, service in local.service_name : fn => "https://${service}-${data.google_project.this.number}.${var.region}.run.app" }

  public_base_url = "https://${var.domain}"
}
