# Migrations: a Cloud Run job with the same image and settings as the functions, running `broker migrate` as its
# own IAM database user (the schema owner), then granting each function's database user what it needs on the
# tables. Cloud Build executes it before every deploy (cloudbuild.yaml, step `migrate`); operators can too:
#   gcloud run jobs execute <name>-migrate --region <region> --wait

resource "google_cloud_run_v2_job" "migrate" {
  name                = "${var.name}-migrate"
  location            = var.region
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.migrate.email
      timeout         = "900s"
      # Direct VPC egress can take a minute to carry the first connection: `broker migrate` waits up to
      # --connect-timeout for the database, and a task that still failed is retried (migrations are transactional
      # and idempotent: a retry after a failure starts from the last committed revision).
      max_retries = 2

      vpc_access {
        network_interfaces {
          network    = google_compute_network.this.id
          subnetwork = google_compute_subnetwork.run.id
        }
        egress = "PRIVATE_RANGES_ONLY"
      }

      containers {
        image   = var.image
        command = ["broker"]
        args = concat(
          ["migrate", "--connect-timeout", "120"],
          flatten([for fn in sort(keys(local.functions)) : ["--grant-to", local.db_user[fn]]]),
        )

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        env {
          name  = "DB_USER"
          value = google_sql_user.migrate.name
        }
        # One connection at a time (local.migrate_connections in the budget, sql.tf).
        env {
          name  = "DB_POOL_SIZE"
          value = "1"
        }
        env {
          name  = "DB_MAX_OVERFLOW"
          value = "1"
        }

        # The functions' settings: the job validates them as a function would.
        dynamic "env" {
          for_each = local.settings_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].template[0].containers[0].image, # CI owns the image tag
      client,
      client_version,
    ]
  }

  depends_on = [google_project_iam_member.database, google_sql_user.migrate, google_sql_database.broker]
}
