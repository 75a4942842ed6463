output "load_balancer_ip" {
  description = "Point the domain's DNS A record here; the managed certificate activates once it resolves."
  value       = google_compute_global_address.lb.address
}

output "public_base_url" {
  description = "PUBLIC_BASE_URL; register <this>/oauth/callback as the redirect URI with each provider."
  value       = local.public_base_url
}

output "services" {
  description = "Cloud Run service name of each function (cloudbuild.yaml deploys to these)."
  value       = local.service_name
}

output "token_fetch_url" {
  description = "Backends call GET <this>/token/{integration_id} with an ID token for this audience and an API key."
  value       = local.run_url["token_fetch"]
}

output "token_fetch_callers" {
  description = "Same-project callers of token_fetch (ingress internal): deploy them with Direct VPC egress on this network and subnet, all traffic (`gcloud run deploy … --network N --subnet S --vpc-egress all-traffic`). null without caller_subnet_cidr."
  value = var.caller_subnet_cidr == null ? null : {
    network    = google_compute_network.this.name
    subnetwork = google_compute_subnetwork.callers[0].name
    vpc_egress = "ALL_TRAFFIC"
  }
}

output "refresh_job" {
  description = "Full name of the Cloud Scheduler job, for `broker scheduler status|run|pause|resume --job`."
  value       = google_cloud_scheduler_job.refresh.id
}

output "migrate_job" {
  description = "The Cloud Run job that runs `broker migrate` (cloudbuild.yaml executes it before deploying)."
  value       = google_cloud_run_v2_job.migrate.name
}

output "instance_connection_name" {
  description = "INSTANCE_CONNECTION_NAME of the Cloud SQL instance."
  value       = google_sql_database_instance.this.connection_name
}

output "build_source_bucket" {
  description = "Where `gcloud builds submit --gcs-source-staging-dir gs://<this>/source` stages the source (the build account reads it)."
  value       = google_storage_bucket.build_source.name
}

output "image_repository" {
  description = "Where Cloud Build pushes the image: <this>/broker:<commit>."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "build_service_account" {
  description = "Run Cloud Build (trigger or `gcloud builds submit --service-account`) as this account."
  value       = google_service_account.build.id
}

output "secrets" {
  description = "The secrets terraform created empty: add their versions out of band (README, Deploy)."
  value       = { for key, secret in google_secret_manager_secret.config : key => secret.secret_id }
}

output "function_service_accounts" {
  description = "Each function's service account."
  value       = { for fn, sa in google_service_account.function : fn => sa.email }
}
