# What every other file shares: the project (its number for IAM conditions), the functions, their names and URLs.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # One Cloud Run service per file in functions/, all from one image: FUNCTION_TARGET names the function,
  # FUNCTION_SOURCE its file (functions-framework reads both). `public` functions sit behind the load balancer;
  # the others are reachable only from inside (token_fetch: named backends; token_refresh: the scheduler).
  functions = {
    oauth_start = {
      source         = "functions/oauth_start.py"
      public         = true
      client_secrets = false # start only builds the authorization URL: it needs client ids, never secrets
      timeout        = "30s"
    }
    oauth_callback = {
      source         = "functions/oauth_callback.py"
      public         = true
      client_secrets = true
      timeout        = "60s"
    }
    integrations = {
      source         = "functions/integrations.py"
      public         = true
      client_secrets = true
      timeout        = "60s"
    }
    token_fetch = {
      source         = "functions/token_fetch.py"
      public         = false
      client_secrets = true
      timeout        = "60s"
    }
    token_refresh = {
      source         = "functions/token_refresh.py"
      public         = false
      client_secrets = true
      timeout        = "300s" # above REFRESH_DEADLINE (240 s): the job stops itself first
    }
  }

  service_name = { for fn in keys(local.functions) : fn => "${var.name}-${replace(fn, "_", "-")}" }

  # Cloud Run's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app): known before the service
  # exists, so a service's own settings can name it (TOKEN_AUDIENCE, REFRESH_AUDIENCE) without a cycle.
  run_url = { for fn, service in local.service_name : fn => "https://${service}-${data.google_project.this.number}.${var.region}.run.app" }

  public_base_url = "https://${var.domain}"
}
