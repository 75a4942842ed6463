# Identities and what each may do. One service account per workload; every grant is the least the code needs.
# Nobody is granted roles/secretmanager.admin (or any basic role) on the project.

resource "google_service_account" "function" {
  for_each = local.functions

  account_id   = local.service_name[each.key]
  display_name = "Integrations broker: ${each.key} function"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "migrate" {
  account_id   = "${var.name}-migrate"
  display_name = "Integrations broker: migration job (owns the database schema)"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name}-scheduler"
  display_name = "Integrations broker: Cloud Scheduler identity that invokes token_refresh"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = "Integrations broker: Cloud Build (build, push, migrate, deploy)"
  depends_on   = [google_project_service.enabled]
}

# --- Cloud SQL: connect through the connector and log in as the IAM database user --------------------------

locals {
  database_clients = merge(
    { for fn, sa in google_service_account.function : fn => sa.email },
    { migrate = google_service_account.migrate.email },
  )
  database_grants = {
    for pair in setproduct(keys(local.database_clients), ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]) :
    "${pair[0]}-${pair[1]}" => { email = local.database_clients[pair[0]], role = pair[1] }
  }
}

resource "google_project_iam_member" "database" {
  for_each = local.database_grants

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${each.value.email}"
}

# --- Integration secrets (SECRET_BACKEND=gcp): created at run time, so granted at project level, limited by an
# IAM condition to names under the prefix. Secret names carry the project NUMBER: a condition written with the
# project id would silently never match. One exception: Secret Manager checks secretmanager.secrets.create on the
# parent (the project), whose name never starts with the prefix, so the create role is granted without the
# condition. Creating an empty secret is harmless: reading, adding versions and destroying stay conditioned.

locals {
  role_prefix = replace(var.name, "-", "_")
  integration_secret_roles = {
    creator = {
      title       = "Create (empty) integration secrets"
      description = "Granted without a condition: secrets.create is checked on the project, not on the secret."
      permissions = ["secretmanager.secrets.create"]
    }
    prober = {
      title       = "See whether an integration secret exists"
      description = "For /ready: a read of a never-created name under the prefix answers NOT_FOUND, not PERMISSION_DENIED."
      permissions = ["secretmanager.secrets.get"]
    }
    reader = {
      title       = "Read integration secrets"
      description = "Granted only with a condition on the secret name prefix ${var.secret_prefix}-."
      permissions = ["secretmanager.versions.access", "secretmanager.versions.list"]
    }
    writer = {
      title       = "Add to, destroy and delete integration secrets"
      description = "Granted only with a condition on the secret name prefix ${var.secret_prefix}-."
      permissions = [
        "secretmanager.secrets.delete",
        "secretmanager.versions.add",
        "secretmanager.versions.destroy",
        "secretmanager.versions.list",
      ]
    }
    rotator = {
      title       = "Add and destroy versions of integration secrets"
      description = "Granted only with a condition on the secret name prefix ${var.secret_prefix}-."
      permissions = [
        "secretmanager.versions.add",
        "secretmanager.versions.destroy",
        "secretmanager.versions.list",
      ]
    }
    sweeper = {
      title       = "Read the labels of and delete integration secrets (the orphan sweep)"
      description = "Granted only with a condition on the secret name prefix ${var.secret_prefix}-."
      permissions = [
        "secretmanager.secrets.delete",
        "secretmanager.secrets.get",
      ]
    }
  }
  # The roles granted without the name condition (see above).
  unconditioned_secret_roles = ["creator"]
  # callback & integrations create/add/destroy; the refresh job reads, adds and destroys, and its housekeeping
  # deletes orphan secrets (no row points at them) after revoking their grant. token_fetch refreshes in line when a
  # token is due (so a caller never waits for the scheduler), and a rotating provider's new refresh token must be
  # stored as a version before the row points at it: it reads, adds and destroys like the job, but cannot create or
  # delete secrets. Every function may probe (GET a name under the prefix) for /ready.
  integration_secret_access = {
    oauth_start    = ["prober"]
    oauth_callback = ["creator", "writer", "prober"]
    integrations   = ["creator", "writer", "reader", "prober"]
    token_fetch    = ["reader", "rotator", "prober"]
    token_refresh  = ["reader", "rotator", "sweeper"] # the sweeper role includes secrets.get (/ready)
  }
  integration_secret_pairs = flatten([
    for fn, roles in local.integration_secret_access : [for role in roles : { fn = fn, role = role }]
  ])
  integration_secret_grants = {
    for pair in local.integration_secret_pairs :
    "${pair.fn}-${pair.role}" => pair if var.secret_backend == "gcp" && !contains(local.unconditioned_secret_roles, pair.role)
  }
  integration_secret_create_grants = {
    for pair in local.integration_secret_pairs :
    "${pair.fn}-${pair.role}" => pair if var.secret_backend == "gcp" && contains(local.unconditioned_secret_roles, pair.role)
  }
}

resource "google_project_iam_custom_role" "integration_secrets" {
  for_each = local.integration_secret_roles

  role_id     = "${local.role_prefix}_integration_secret_${each.key}"
  title       = "Integrations broker: ${each.value.title}"
  description = each.value.description
  permissions = each.value.permissions
  depends_on  = [google_project_service.enabled]
}

resource "google_project_iam_member" "integration_secrets" {
  for_each = local.integration_secret_grants

  project = var.project_id
  role    = google_project_iam_custom_role.integration_secrets[each.value.role].id
  member  = "serviceAccount:${google_service_account.function[each.value.fn].email}"

  condition {
    title       = "integration secrets only"
    description = "Secrets named ${var.secret_prefix}-<integration id>."
    expression  = "resource.name.startsWith(\"projects/${data.google_project.this.number}/secrets/${var.secret_prefix}-\")"
  }
}

# The orphan sweep lists the secrets under the prefix: secretmanager.secrets.list is a permission on the project
# (there is no secret name yet for a condition to match), so it is its own role, granted to the refresh job alone.
# It shows secret names and labels (entity and provider ids), never a payload.
resource "google_project_iam_custom_role" "secret_lister" {
  count = var.secret_backend == "gcp" ? 1 : 0

  role_id     = "${local.role_prefix}_secret_lister"
  title       = "Integrations broker: list secrets (the refresh job's orphan sweep)"
  description = "Names and labels only; reading a payload needs the prefix-conditioned reader role."
  permissions = ["secretmanager.secrets.list"]
  depends_on  = [google_project_service.enabled]
}

resource "google_project_iam_member" "secret_lister" {
  count = var.secret_backend == "gcp" ? 1 : 0

  project = var.project_id
  role    = google_project_iam_custom_role.secret_lister[0].id
  member  = "serviceAccount:${google_service_account.function["token_refresh"].email}"
}

# secretmanager.secrets.create only: a condition on the secret's name would never match the project it is checked on.
resource "google_project_iam_member" "integration_secret_create" {
  for_each = local.integration_secret_create_grants

  project = var.project_id
  role    = google_project_iam_custom_role.integration_secrets["creator"].id
  member  = "serviceAccount:${google_service_account.function[each.value.fn].email}"
}

# --- The deployment's own secrets: granted on each secret, to the functions that read it ---------------------

locals {
  config_secret_readers = merge(
    { for fn in keys(local.functions) : "data-key/${fn}" => { config = "data-key", fn = fn } },
    { for fn in ["token_fetch", "oauth_start"] : "internal-api-keys/${fn}" => { config = "internal-api-keys", fn = fn } },
    {
      for pair in setproduct(keys(var.oauth_providers), [for fn, f in local.functions : fn if f.client_secrets]) :
      "client-secret-${pair[0]}/${pair[1]}" => { config = "client-secret-${pair[0]}", fn = pair[1] }
    },
  )
}

resource "google_secret_manager_secret_iam_member" "config" {
  for_each = local.config_secret_readers

  secret_id = google_secret_manager_secret.config[each.value.config].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.fn].email}"
}

# --- Who may invoke the internal functions ----------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "token_fetch_invoker" {
  for_each = toset(var.token_fetch_invokers)

  name     = google_cloud_run_v2_service.function["token_fetch"].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value}"
}

resource "google_cloud_run_v2_service_iam_member" "token_refresh_invoker" {
  name     = google_cloud_run_v2_service.function["token_refresh"].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# --- The build service account (cloudbuild.yaml): push the image, run the migration job, deploy -------------

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter", # build logs (the build uses CLOUD_LOGGING_ONLY)
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

# Cloud Run roles only on what the build deploys: the five services and the migration job. On the project,
# run.developer would let the build create or change any service or job, and run any of them as an account it may
# act as (the migration job's is a database superuser). On the job itself the build must change the image anyway,
# so run.developer there (which includes running with overrides) gives it nothing more than it needs.
resource "google_cloud_run_v2_service_iam_member" "build" {
  for_each = google_cloud_run_v2_service.function

  name     = each.value.name
  location = var.region
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_cloud_run_v2_job_iam_member" "build" {
  name     = google_cloud_run_v2_job.migrate.name
  location = var.region
  role     = "roles/run.developer" # update the image, execute, and watch the execution (--wait)
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build" {
  repository = google_artifact_registry_repository.images.name
  location   = var.region
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

# Deploying a revision that runs as a service account needs actAs on that account, and nothing wider.
resource "google_service_account_iam_member" "build_acts_as" {
  for_each = merge(
    { for fn, sa in google_service_account.function : fn => sa.name },
    { migrate = google_service_account.migrate.name },
  )

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.build.email}"
}
