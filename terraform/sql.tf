# Cloud SQL for PostgreSQL: private IP only, IAM database authentication (no passwords anywhere, none in state),
# connections only through the Cloud SQL connectors (client certificates), backups with point-in-time recovery.

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV_GCP_79:The major version is the postgres_version variable (validated >= 15); raise it after the test suite has run on the new major (Cloud SQL upgrades in place).
  #checkov:skip=CKV2_GCP_13:log_duration writes a line for every statement (volume and cost); Query Insights already records statement latency.
  name                = "${var.name}-pg"
  region              = var.region
  database_version    = var.postgres_version
  deletion_protection = var.deletion_protection

  settings {
    edition                     = "ENTERPRISE"
    tier                        = var.db_tier
    availability_type           = var.db_availability_type
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = merge({ app = var.name }, var.labels)

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.this.id
      # The Python connector (functions, migration job) and the Auth Proxy present the ephemeral client
      # certificate Cloud SQL issues them, so nothing else can open a connection even inside the VPC.
      ssl_mode = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.db_backup_start_time
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = var.db_log_retention_days
      backup_retention_settings {
        retained_backups = var.db_retained_backups
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7
      hour         = 4
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }
    database_flags {
      # The connection budget below must fit under it.
      name  = "max_connections"
      value = tostring(var.db_max_connections)
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      # Statement text can hold values: never log statements by duration.
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  lifecycle {
    precondition {
      condition     = local.db_connection_budget <= var.db_max_connections
      error_message = "The functions may open ${local.db_connection_budget} database connections (max instances × (pool + overflow) per function, token_fetch's hot-path pool, the migration job and ${local.db_reserved_connections} reserved), more than db_max_connections = ${var.db_max_connections}: lower max_instances or db_pool_size, or raise db_max_connections (with a larger db_tier)."
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

# Every connection the deployment may open at once: each function's instances × (pool + overflow), token_fetch's
# hot-path pool (DB_POOL_SIZE raw connections beside its engine's), the migration job's, and a reserve for Cloud
# SQL's own superuser connections and an operator's session.
locals {
  migrate_connections     = 2 # DB_POOL_SIZE 1 + DB_MAX_OVERFLOW 1 (migrate.tf)
  db_reserved_connections = 10
  hot_path_connections    = local.scaling["token_fetch"].max_instances * local.scaling["token_fetch"].db_pool_size
  db_connection_budget = sum([
    for fn, s in local.scaling : s.max_instances * (s.db_pool_size + var.db_max_overflow)
  ]) + local.hot_path_connections + local.migrate_connections + local.db_reserved_connections
}

resource "google_sql_database" "broker" {
  name     = var.db_name
  instance = google_sql_database_instance.this.name
  # The tables belong to the migration user: the Admin API cannot drop the database then. A destroy forgets it
  # (it goes with the instance, which deletion protection guards).
  deletion_policy = "ABANDON"
}

# IAM database users: the service account's email without ".gserviceaccount.com" (what DB_USER holds).
locals {
  db_user = { for fn, sa in google_service_account.function : fn => trimsuffix(sa.email, ".gserviceaccount.com") }
}

resource "google_sql_user" "function" {
  for_each = google_service_account.function

  name     = local.db_user[each.key]
  instance = google_sql_database_instance.this.name
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
  # Granted privileges on the tables: PostgreSQL refuses to drop such a user, so a destroy forgets it instead.
  deletion_policy = "ABANDON"
}

# The migration job's user creates and owns the tables, so it needs CREATE on the database's public schema
# (PostgreSQL 15+ grants it to nobody by default): cloudsqlsuperuser, set through the Admin API, no password.
# After each migration it grants the function users what they need on the tables (`broker migrate --grant-to`).
resource "google_sql_user" "migrate" {
  name           = trimsuffix(google_service_account.migrate.email, ".gserviceaccount.com")
  instance       = google_sql_database_instance.this.name
  type           = "CLOUD_IAM_SERVICE_ACCOUNT"
  database_roles = ["cloudsqlsuperuser"]
  # It owns the tables: PostgreSQL refuses to drop it, so a destroy forgets it (the instance takes it along).
  deletion_policy = "ABANDON"
}
