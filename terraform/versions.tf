terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.20+: google_sql_user.database_roles (the migration job's user owns the schema, see sql.tf).
      version = ">= 7.20, < 8.0"
    }
  }
}

provider "google" {
  project        = var.project_id
  region         = var.region
  default_labels = merge({ app = var.name }, var.labels)
}
