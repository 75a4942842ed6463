# Where `gcloud builds submit` stages the source for cloudbuild.yaml. Without it, gcloud would create
# gs://<project>_cloudbuild on the first submit, which the build account could not read. Staged sources are only
# needed while their build runs: they are deleted after a week.

resource "google_storage_bucket" "build_source" {
  #checkov:skip=CKV_GCP_62:Access logs of a bucket that holds only staged copies of the open-source code; the build logs already record who built what.
  #checkov:skip=CKV_GCP_78:Versioning keeps old sources that nobody reads again; each build stages its own object.
  name                        = "${var.project_id}-${var.name}-build-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The build reads the source it is given (the operator or the trigger uploads it).
resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.build_source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}
