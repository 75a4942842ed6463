# The deployment's own secrets: created empty, never with a value. Operators add versions out of band (README,
# "Deploy"), so no secret value ever passes through terraform or its state. Integration secrets are not here:
# the functions create them at run time as <secret_prefix>-<integration id>.

locals {
  config_secrets = merge(
    {
      "data-key"          = "The data key (32 random bytes, raw or base64): DATA_KEY_SECRET pins one version."
      "internal-api-keys" = "INTERNAL_API_KEYS for token_fetch and oauth_start (POST /connect/sessions): comma-separated keys of at least 24 characters."
    },
    { for id in keys(var.oauth_providers) : "client-secret-${id}" => "${upper(replace(id, "-", "_"))}_CLIENT_SECRET: the ${id} OAuth client secret." },
  )
}

resource "google_secret_manager_secret" "config" {
  for_each = local.config_secrets

  secret_id = "${var.name}-${each.key}"
  annotations = {
    purpose = each.value
  }

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  lifecycle {
    precondition {
      # The prefix grants in iam.tf would otherwise reach the deployment's own secrets.
      condition     = !startswith("${var.name}-${each.key}", "${var.secret_prefix}-")
      error_message = "secret_prefix '${var.secret_prefix}' must not be a prefix of the deployment's own secret '${var.name}-${each.key}': choose another secret_prefix or name."
    }
  }

  depends_on = [google_project_service.enabled]
}

# Every secret version a revision reads must exist (and be enabled) before a service is created or changed, or the
# revision fails to start with an unhelpful error. This check runs at apply time, after the secrets exist and before
# the services (functions.tf depends on it), and names each missing version with the command that adds it. It reads
# only versions' states, never a payload (nothing lands in the state). Needs gcloud, like the rest of the README.
locals {
  required_secret_versions = sort(concat(
    ["${google_secret_manager_secret.config["data-key"].secret_id}:${var.data_key_version}"],
    ["${google_secret_manager_secret.config["internal-api-keys"].secret_id}:${var.internal_api_keys_version}"],
    [for id, p in var.oauth_providers : "${google_secret_manager_secret.config["client-secret-${id}"].secret_id}:${p.client_secret_version}"],
  ))
}

resource "terraform_data" "secret_versions" {
  triggers_replace = local.required_secret_versions

  provisioner "local-exec" {
    command = "bash ${path.module}/check-secret-versions.sh ${var.project_id} ${join(" ", local.required_secret_versions)}"
  }
}
