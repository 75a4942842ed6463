# Inputs. Every one is typed and validated here, so a typo fails at plan time, not at the first request.

variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "The region for Cloud Run, Cloud SQL, Cloud Scheduler and the image repository (e.g. europe-west1)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "name" {
  description = "Prefix of every resource name (services, service accounts, secrets, the database instance)."
  type        = string
  default     = "broker"
  validation {
    # Service account ids are at most 30 characters: "<name>-oauth-callback" leaves 15 for the name.
    condition     = can(regex("^[a-z][a-z0-9-]{1,13}[a-z0-9]$", var.name))
    error_message = "name must be 3-15 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))])
    error_message = "labels keys and values must be lowercase letters, digits, '_' or '-' (keys start with a letter, at most 63)."
  }
}

variable "image" {
  description = <<-EOT
    The image the services and the migration job start with. CI owns the tag after the first apply (terraform ignores
    later changes), so the default is Google's placeholder until the first Cloud Build run deploys the broker.
  EOT
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]{1,128}|@sha256:[a-f0-9]{64})?$", var.image))
    error_message = "image must be a container image reference (host/path[:tag|@sha256:digest])."
  }
}

variable "domain" {
  description = "The broker's public host name (a DNS A record points it at the load balancer's address); PUBLIC_BASE_URL is https://<domain>."
  type        = string
  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain must be a lowercase fully qualified host name such as broker.example.com (no scheme, no path)."
  }
}

variable "allowed_return_urls" {
  description = "ALLOWED_RETURN_URLS: the https URLs the connect flow may send the browser back to."
  type        = list(string)
  validation {
    condition     = length(var.allowed_return_urls) > 0 && alltrue([for u in var.allowed_return_urls : can(regex("^https://[^\\s,]+$", u))])
    error_message = "allowed_return_urls must hold at least one https URL (no commas or spaces)."
  }
}

variable "allowed_origins" {
  description = "ALLOWED_ORIGINS: the frontend origins (https://app.example.com) allowed to call the browser-facing functions."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for o in var.allowed_origins : can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", o))])
    error_message = "allowed_origins entries must be https origins without a path (https://host[:port])."
  }
}

variable "auth_issuer" {
  description = "AUTH_ISSUER: the OIDC issuer of the frontend's ID tokens (e.g. https://securetoken.google.com/<firebase project>)."
  type        = string
  validation {
    condition     = can(regex("^https://[^\\s]+$", var.auth_issuer))
    error_message = "auth_issuer must be an https URL."
  }
}

variable "auth_audience" {
  description = "AUTH_AUDIENCE: the audiences accepted in the frontend's ID tokens (e.g. the Firebase project id)."
  type        = list(string)
  validation {
    condition     = length(var.auth_audience) > 0 && alltrue([for a in var.auth_audience : length(a) > 0 && !strcontains(a, ",")])
    error_message = "auth_audience must hold at least one non-empty audience without commas."
  }
}

variable "auth_entity_claim" {
  description = "AUTH_ENTITY_CLAIM: the ID token claim that names the entity."
  type        = string
  default     = "sub"
  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.:/-]{0,99}$", var.auth_entity_claim))
    error_message = "auth_entity_claim must be a claim name (letters, digits, '_', '.', ':', '/', '-')."
  }
}

variable "auth_jwks_url" {
  description = "AUTH_JWKS_URL: the issuer's JWKS URL when OIDC discovery should not be used (null: discover it)."
  type        = string
  default     = null
  validation {
    condition     = var.auth_jwks_url == null || can(regex("^https://[^\\s]+$", var.auth_jwks_url))
    error_message = "auth_jwks_url must be an https URL or null."
  }
}

variable "oauth_providers" {
  description = <<-EOT
    The providers this deployment connects, by catalog id: the OAuth client id (plain setting <ID>_CLIENT_ID) and
    the version of its client secret (<ID>_CLIENT_SECRET, from the Secret Manager secret <name>-client-secret-<id>
    that terraform creates empty; add the value out of band).
  EOT
  type = map(object({
    client_id             = string
    client_secret_version = optional(string, "latest")
  }))
  default = {}
  validation {
    condition     = alltrue([for id, p in var.oauth_providers : can(regex("^[a-z][a-z0-9-]{0,30}$", id)) && length(trimspace(p.client_id)) > 0])
    error_message = "oauth_providers keys must be catalog ids (lowercase letters, digits, '-') and every client_id must be set."
  }
  validation {
    condition     = alltrue([for p in values(var.oauth_providers) : can(regex("^(latest|[1-9][0-9]*)$", p.client_secret_version))])
    error_message = "client_secret_version must be 'latest' or a version number."
  }
}

variable "data_key_version" {
  description = "DATA_KEY_SECRET's pinned version number of the data key secret (never 'latest'); raise it to rotate."
  type        = number
  default     = 1
  validation {
    condition     = var.data_key_version >= 1 && floor(var.data_key_version) == var.data_key_version
    error_message = "data_key_version must be a whole number >= 1."
  }
}

variable "internal_api_keys_version" {
  description = "The version of the <name>-internal-api-keys secret given to token_fetch and oauth_start as INTERNAL_API_KEYS."
  type        = string
  default     = "latest"
  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.internal_api_keys_version))
    error_message = "internal_api_keys_version must be 'latest' or a version number."
  }
}

variable "token_fetch_invokers" {
  description = "Service account emails of the backends allowed to call token_fetch (roles/run.invoker and TOKEN_INVOKERS)."
  type        = list(string)
  validation {
    condition     = length(var.token_fetch_invokers) > 0 && alltrue([for e in var.token_fetch_invokers : can(regex("^[a-z0-9-]+@[a-z0-9-]+\\.iam\\.gserviceaccount\\.com$", e))])
    error_message = "token_fetch_invokers must hold at least one service account email (name@project.iam.gserviceaccount.com)."
  }
}

variable "token_allowed_cidrs" {
  description = "ALLOWED_CIDRS: source networks token_fetch accepts callers from (empty: any network that can reach it)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.token_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "token_allowed_cidrs entries must be CIDR ranges such as 10.8.0.0/16."
  }
}

variable "secret_backend" {
  description = "SECRET_BACKEND: 'gcp' (one Secret Manager secret per integration) or 'database' (envelope-encrypted rows). See the README for the cost of each."
  type        = string
  default     = "gcp"
  validation {
    condition     = contains(["gcp", "database"], var.secret_backend)
    error_message = "secret_backend must be 'gcp' or 'database'."
  }
}

variable "secret_prefix" {
  description = "SECRET_PREFIX: integration secrets are named <secret_prefix>-<integration id>; IAM grants are limited to that prefix."
  type        = string
  default     = "broker-int"
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,99}$", var.secret_prefix))
    error_message = "secret_prefix must start with a letter and hold only letters, digits, '-' and '_' (at most 100)."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the functions and the migration job."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "postgres_version" {
  description = "The Cloud SQL PostgreSQL major version."
  type        = string
  default     = "POSTGRES_16"
  validation {
    condition     = can(regex("^POSTGRES_(1[5-9]|[2-9][0-9])$", var.postgres_version))
    error_message = "postgres_version must be POSTGRES_15 or later."
  }
}

variable "db_tier" {
  description = "The Cloud SQL machine tier (Enterprise edition), e.g. db-custom-1-3840."
  type        = string
  default     = "db-custom-1-3840"
  validation {
    condition     = can(regex("^db-(custom-[0-9]+-[0-9]+|g1-small|f1-micro|perf-optimized-N-[0-9]+)$", var.db_tier))
    error_message = "db_tier must be a Cloud SQL tier such as db-custom-1-3840."
  }
}

variable "db_availability_type" {
  description = "REGIONAL (high availability, a standby in another zone) or ZONAL."
  type        = string
  default     = "REGIONAL"
  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.db_availability_type)
    error_message = "db_availability_type must be REGIONAL or ZONAL."
  }
}

variable "db_name" {
  description = "DB_NAME: the database the broker uses."
  type        = string
  default     = "broker"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must be a lowercase identifier (letters, digits, '_'), starting with a letter."
  }
}

variable "db_backup_start_time" {
  description = "Start of the daily backup window, HH:MM in UTC."
  type        = string
  default     = "03:00"
  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.db_backup_start_time))
    error_message = "db_backup_start_time must be HH:MM (24h, UTC)."
  }
}

variable "db_retained_backups" {
  description = "How many daily backups to keep."
  type        = number
  default     = 14
  validation {
    condition     = var.db_retained_backups >= 1 && var.db_retained_backups <= 365
    error_message = "db_retained_backups must be between 1 and 365."
  }
}

variable "db_log_retention_days" {
  description = "Days of transaction logs kept for point-in-time recovery (Enterprise edition: 1-7)."
  type        = number
  default     = 7
  validation {
    condition     = var.db_log_retention_days >= 1 && var.db_log_retention_days <= 7
    error_message = "db_log_retention_days must be between 1 and 7."
  }
}

variable "run_subnet_cidr" {
  description = "The subnet Cloud Run sends private traffic from (Direct VPC egress; /26 or larger)."
  type        = string
  default     = "10.8.0.0/24"
  validation {
    condition     = can(cidrhost(var.run_subnet_cidr, 0)) && try(tonumber(split("/", var.run_subnet_cidr)[1]) <= 26, false)
    error_message = "run_subnet_cidr must be a CIDR range of /26 or larger."
  }
}

variable "private_services_prefix_length" {
  description = "Size of the range reserved for private services access (Cloud SQL private IP)."
  type        = number
  default     = 20
  validation {
    condition     = var.private_services_prefix_length >= 16 && var.private_services_prefix_length <= 24
    error_message = "private_services_prefix_length must be between 16 and 24."
  }
}

variable "max_instances" {
  description = "Upper bound on instances per function, by function (e.g. { token_fetch = 10 }); unset ones keep the defaults in main.tf. Sized with db_pool_size to fit db_max_connections."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for fn, n in var.max_instances : contains(["oauth_start", "oauth_callback", "integrations", "token_fetch", "token_refresh"], fn) && n >= 1 && n <= 100 && floor(n) == n])
    error_message = "max_instances keys must be function names (oauth_start, oauth_callback, integrations, token_fetch, token_refresh) and values whole numbers from 1 to 100."
  }
}

variable "db_pool_size" {
  description = "DB_POOL_SIZE by function (e.g. { token_refresh = 8 }); unset ones keep the defaults in main.tf."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for fn, n in var.db_pool_size : contains(["oauth_start", "oauth_callback", "integrations", "token_fetch", "token_refresh"], fn) && n >= 1 && n <= 100 && floor(n) == n])
    error_message = "db_pool_size keys must be function names and values whole numbers from 1 to 100."
  }
}

variable "db_max_overflow" {
  description = "DB_MAX_OVERFLOW: connections each instance may open beyond its pool under a burst."
  type        = number
  default     = 1
  validation {
    condition     = var.db_max_overflow >= 0 && var.db_max_overflow <= 100 && floor(var.db_max_overflow) == var.db_max_overflow
    error_message = "db_max_overflow must be a whole number from 0 to 100."
  }
}

variable "db_max_connections" {
  description = "The Cloud SQL max_connections flag. Every function's max instances × (pool + overflow), the migration job and a reserve must fit under it (checked at plan time); raise it with db_tier (Cloud SQL's default for 3.75 GB is 100)."
  type        = number
  default     = 100
  validation {
    condition     = var.db_max_connections >= 25 && var.db_max_connections <= 10000 && floor(var.db_max_connections) == var.db_max_connections
    error_message = "db_max_connections must be a whole number from 25 to 10000."
  }
}

variable "token_fetch_ingress" {
  description = "token_fetch's ingress: 'internal' (only callers in this project's VPC, Shared VPC, a VPC-SC perimeter or an internal load balancer) or 'all' (any network; Cloud Run IAM and the API key or ID token are the gates)."
  type        = string
  default     = "internal"
  validation {
    condition     = contains(["internal", "all"], var.token_fetch_ingress)
    error_message = "token_fetch_ingress must be \"internal\" or \"all\"."
  }
}

variable "caller_subnet_cidr" {
  description = "With token_fetch_ingress = 'internal': a subnet for same-project callers (Cloud Run with Direct VPC egress, all traffic), with Private Google Access and Cloud NAT. null: none."
  type        = string
  default     = null
  validation {
    condition     = var.caller_subnet_cidr == null || (can(cidrhost(var.caller_subnet_cidr, 0)) && try(tonumber(split("/", var.caller_subnet_cidr)[1]) <= 26, false))
    error_message = "caller_subnet_cidr must be null or a CIDR range of /26 or larger (e.g. 10.9.0.0/24)."
  }
}

variable "max_request_concurrency" {
  description = "Concurrent requests per instance (the functions-framework server runs 4 threads per CPU)."
  type        = number
  default     = 8
  validation {
    condition     = var.max_request_concurrency >= 1 && var.max_request_concurrency <= 80
    error_message = "max_request_concurrency must be between 1 and 80."
  }
}

variable "refresh_schedule" {
  description = "Cron schedule of the refresh job (Cloud Scheduler, UTC)."
  type        = string
  default     = "*/5 * * * *"
  validation {
    condition     = length(split(" ", trimspace(var.refresh_schedule))) == 5
    error_message = "refresh_schedule must be a five-field cron expression such as '*/5 * * * *'."
  }
}

variable "refresh_fanout" {
  description = "Fan the refresh job out over Cloud Tasks (tasks.tf): the schedule posts /refresh/dispatch, one queue per provider in oauth_providers."
  type        = bool
  default     = false
}

variable "refresh_shard_size" {
  description = "Due integrations per fan-out task (REFRESH_SHARD_SIZE)."
  type        = number
  default     = 100
  validation {
    condition     = var.refresh_shard_size >= 1 && var.refresh_shard_size <= 1000
    error_message = "refresh_shard_size must be from 1 to 1000."
  }
}

variable "refresh_max_shards" {
  description = "Tasks per provider per dispatch at most (REFRESH_MAX_SHARDS): about what a queue runs in one schedule period."
  type        = number
  default     = 600
  validation {
    condition     = var.refresh_max_shards >= 1 && var.refresh_max_shards <= 10000
    error_message = "refresh_max_shards must be from 1 to 10000."
  }
}

variable "refresh_queue_defaults" {
  description = "Rate limits of each provider's refresh queue: tasks started per second, and tasks running at once."
  type = object({
    max_dispatches_per_second = number
    max_concurrent_dispatches = number
  })
  default = {
    max_dispatches_per_second = 5
    max_concurrent_dispatches = 10
  }
  validation {
    condition     = var.refresh_queue_defaults.max_dispatches_per_second > 0 && var.refresh_queue_defaults.max_concurrent_dispatches >= 1
    error_message = "Queue rate limits must be positive."
  }
}

variable "refresh_queue_limits" {
  description = "Per-provider overrides of refresh_queue_defaults, by catalog id (a provider with a small token-endpoint quota)."
  type = map(object({
    max_dispatches_per_second = optional(number)
    max_concurrent_dispatches = optional(number)
  }))
  default = {}
  validation {
    condition     = alltrue([for id in keys(var.refresh_queue_limits) : can(regex("^[a-z][a-z0-9-]{0,30}$", id))])
    error_message = "refresh_queue_limits keys must be catalog ids."
  }
}

variable "deletion_protection" {
  description = "Protect the database instance and the Cloud Run services and job from `terraform destroy`."
  type        = bool
  default     = true
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) the alert policies notify; empty: the alerts open incidents without notifying anyone."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "alert_notification_channels entries must be projects/<project>/notificationChannels/<id>."
  }
}

variable "alert_refresh_failure_ratio" {
  description = "Alert when more than this share of refreshes fails over 30 minutes (0-1)."
  type        = number
  default     = 0.2
  validation {
    condition     = var.alert_refresh_failure_ratio > 0 && var.alert_refresh_failure_ratio < 1
    error_message = "alert_refresh_failure_ratio must be between 0 and 1."
  }
}

variable "alert_reauth_required_per_hour" {
  description = "Alert when more integrations than this move to reauth_required within an hour."
  type        = number
  default     = 10
  validation {
    condition     = var.alert_reauth_required_per_hour >= 0
    error_message = "alert_reauth_required_per_hour must be 0 or more."
  }
}
