# Where Cloud Build pushes the broker's image (one image for the five functions and the migration job).

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:The image holds only the open-source code (no secrets, no data); Google-managed encryption at rest is enough and a KMS key would add a key ring to operate.
  repository_id = var.name
  location      = var.region
  format        = "DOCKER"
  description   = "Integrations broker images, tagged by commit (CI owns the tag)."

  docker_config {
    immutable_tags = true
  }

  # Keep the recent images (rollback targets) and drop the rest.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.enabled]
}
